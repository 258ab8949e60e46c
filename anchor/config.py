"""anchor.toml → typed settings. Every error names the file, the line and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from anchor.problems import InputError, Problem
from anchor.tomlsource import TomlSource, read_text, validation_problems

DEFAULT_CONFIG = Path("anchor.toml")

Seconds = Annotated[float, Field(ge=0, le=60)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathSettings(Section):
    """Folders; relative paths are taken from the folder holding anchor.toml."""

    data_dir: Path = Path("data")
    scripts_dir: Path = Path("scripts_content")
    schedules_dir: Path = Path("schedules")
    cache_dir: Path | None = None  # default: <data_dir>/cache


class LoudnessSettings(Section):
    """EBU R128 targets for every Program."""

    target_lufs: float = Field(-16.0, ge=-40, le=-5)
    true_peak_dbtp: float = Field(-1.5, ge=-9, le=0)
    sample_rate: int = 48000

    @field_validator("sample_rate")
    @classmethod
    def _broadcast_rate(cls, value: int) -> int:
        if value not in (44100, 48000):
            raise ValueError("sample_rate must be 48000 (broadcast) or 44100")
        return value


class SubtitleSettings(Section):
    max_line_chars: int = Field(18, ge=6, le=80)  # 18 CJK characters fit a 16:9 lower third


class ChainSettings(Section):
    """How engines are tried: timeouts, retries, and the circuit breaker."""

    engines: list[str] = Field(default_factory=lambda: ["edge", "espeak"], min_length=1)
    request_timeout: float = Field(20.0, gt=0, le=300)
    retries: int = Field(2, ge=0, le=10)
    backoff: float = Field(0.5, ge=0, le=60)
    breaker_failures: int = Field(3, ge=1, le=100)
    breaker_cooldown: float = Field(300.0, ge=1, le=86400)


class SpeechSettings(Section):
    language: str = "zh-CN"
    sentence_pause: Seconds = 0.35
    paragraph_pause: Seconds = 0.8
    clause_pause: Seconds = 0.18
    max_sentence_chars: int = Field(80, ge=10, le=400)
    chain: ChainSettings = ChainSettings()
    loudness: LoudnessSettings = LoudnessSettings()
    # Per-engine tables ([speech.engines.edge] …); each engine file defines and validates its own.
    engines: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ChannelDefaults(Section):
    """What a channel file leaves out comes from here."""

    output: str = "file"
    avatar: str = "default"  # "default" (the one anchor ships) or a folder of frames, relative to anchor.toml
    prerender_hours: float = Field(6.0, gt=0, le=168)
    voice: str | None = None
    fallback_voice: str | None = None


class DaemonSettings(Section):
    metrics_host: str = "127.0.0.1"  # loopback unless an operator opens it on purpose
    metrics_port: int = Field(9464, ge=0, le=65535)
    # SQLAlchemy URL of the as-run log; empty = SQLite under data_dir. A URL with a password belongs in
    # the environment (ANCHOR_DATABASE_URL) or a credentials file, never here.
    database_url: str = ""
    stop_timeout: float = Field(10.0, gt=0, le=120)


class ObsSettings(Section):
    """One OBS Studio to air through ([obs.NAME]); channels say output = "obs:NAME". The password is never
    here: ANCHOR_OBS_PASSWORD_<NAME> in the environment, or a credentials file (systemd LoadCredential=)."""

    host: str = "127.0.0.1"
    port: int = Field(4455, ge=1, le=65535)
    request_timeout: float = Field(3.0, gt=0, le=60)

    @field_validator("port")
    @classmethod
    def _v5(cls, value: int) -> int:
        if value == 4444:  # obs-websocket-py silently speaks the old v4 protocol on this port
            raise ValueError("4444 is the old obs-websocket 4 port; OBS 28 and later serve v5 on 4455")
        return value


class CacheSettings(Section):
    max_size_mb: int = Field(2048, ge=16)


class LogSettings(Section):
    level: str = "INFO"

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("level must be one of DEBUG, INFO, WARNING, ERROR")
        return value.upper()


class Settings(Section):
    paths: PathSettings = PathSettings()
    speech: SpeechSettings = SpeechSettings()
    subtitles: SubtitleSettings = SubtitleSettings()
    cache: CacheSettings = CacheSettings()
    log: LogSettings = LogSettings()
    channels: ChannelDefaults = ChannelDefaults()
    daemon: DaemonSettings = DaemonSettings()
    obs: dict[str, ObsSettings] = Field(default_factory=dict)
    # Per-output tables ([outputs.file] …); each output file defines and validates its own.
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Where this came from; relative paths resolve against base_dir.
    source: Path | None = None
    base_dir: Path = Path(".")

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.paths.data_dir)

    @property
    def scripts_dir(self) -> Path:
        return self.resolve(self.paths.scripts_dir)

    @property
    def schedules_dir(self) -> Path:
        return self.resolve(self.paths.schedules_dir)

    @property
    def cache_dir(self) -> Path:
        return self.resolve(self.paths.cache_dir) if self.paths.cache_dir else self.data_dir / "cache"

    def engine_settings(self, name: str) -> BaseModel:
        from anchor.speech.engines import engine_type

        return engine_type(name).Settings.model_validate(self.speech.engines.get(name, {}))

    def output_settings(self, name: str) -> BaseModel:
        from anchor.outputs import output_type

        return output_type(name).Settings.model_validate(self.outputs.get(name, {}))


def load_settings(path: Path = DEFAULT_CONFIG) -> Settings:
    """Read and validate anchor.toml; raises InputError listing every problem."""
    source = TomlSource(path, read_text(path))
    data = dict(source.data)
    for reserved in ("source", "base_dir"):
        if reserved in data:
            raise InputError([source.problem((reserved,), f"unknown key '{reserved}'", "remove it")])
    base = path.resolve().parent
    try:
        settings = Settings.model_validate({**data, "source": path, "base_dir": base})
    except ValidationError as exc:
        raise InputError(validation_problems(source, exc, Settings)) from None
    problems = _engine_problems(source, settings)
    if problems:
        raise InputError(problems)
    return settings


def _backend_tables(source: TomlSource, tables: dict[str, dict[str, Any]], location: tuple[str, ...],
                    kind: str, registry: Any) -> list[Problem]:
    """Validate [speech.engines.X] / [outputs.X] tables with the model the backend X defines."""
    problems: list[Problem] = []
    known = registry.names()
    for name, table in tables.items():
        if name not in known:
            problems.append(source.problem(location + (name,), f"unknown {kind} '{name}'",
                                           f"{kind} tables are: {', '.join(known)}"))
            continue
        model = registry.get(name).Settings
        try:
            model.model_validate(table)
        except ValidationError as exc:
            problems.extend(validation_problems(source, exc, model, location + (name,)))
    return problems


def _engine_problems(source: TomlSource, settings: Settings) -> list[Problem]:
    from anchor.outputs import OUTPUTS
    from anchor.speech.engines import ENGINES

    problems: list[Problem] = []
    for name in settings.speech.chain.engines:
        if name not in ENGINES.names():
            problems.append(source.problem(("speech", "chain", "engines"), f"unknown engine '{name}'",
                                           f"choose from: {', '.join(ENGINES.names())}"))
    problems += _backend_tables(source, settings.speech.engines, ("speech", "engines"), "engine", ENGINES)
    problems += _backend_tables(source, settings.outputs, ("outputs",), "output", OUTPUTS)
    return problems


def default_settings(base_dir: Path = Path(".")) -> Settings:
    return Settings(base_dir=base_dir.resolve())
