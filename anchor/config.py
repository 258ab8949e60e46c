"""anchor.toml → typed settings. Every error names the file, the line and the key."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from anchor.clock import zone_name
from anchor.problems import InputError, Problem
from anchor.tomlsource import TomlSource, read_text, validation_problems

DEFAULT_CONFIG = Path("anchor.toml")
DATABASE_URL_ENV = "ANCHOR_DATABASE_URL"
INSTITUTION_TIMEZONE = "Asia/Shanghai"  # [daemon] timezone's default

Seconds = Annotated[float, Field(ge=0, le=60)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathSettings(Section):
    """Folders; relative paths are taken from the folder holding anchor.toml."""

    data_dir: Path = Path("data")
    scripts_dir: Path = Path("scripts_content")
    schedules_dir: Path = Path("schedules")
    cache_dir: Path | None = None  # default: <data_dir>/cache
    calendar_dir: Path = Path("calendar")  # China's holidays for years the bundled data lacks (*.toml)
    lexicon: Path = Path("lexicon.toml")  # the institution's own readings (word → pinyin or what to say)
    screening_dir: Path = Path("screening")  # the institution's own word lists (*.txt), one category each


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


_OUTPUT_REF = re.compile(r"^([a-z][a-z0-9_]*)(?::([A-Za-z0-9._-]+))?$")


@dataclass(frozen=True)
class OutputRef:
    """Where a channel airs, as written `output = "kind"` or `"kind:target"` (file, obs:studio): parsed once."""

    kind: str
    target: str = ""

    @classmethod
    def parse(cls, text: str) -> OutputRef:
        match = _OUTPUT_REF.match(text.strip())
        if not match:
            raise ValueError(f"'{text}' is not an output: write e.g. \"file\" or \"obs:studio\"")
        return cls(match.group(1), match.group(2) or "")

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind


class ChannelDefaults(Section):
    """What a channel file leaves out comes from here."""

    output: str = "file"
    avatar: str = "default"  # "default" (the one anchor ships) or a folder of frames, relative to anchor.toml
    prerender_hours: float = Field(6.0, gt=0, le=168)
    voice: str | None = None
    fallback_voice: str | None = None
    approval: Literal["required", "none"] = "none"  # "required": only approved text airs (anchor approve)

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        OutputRef.parse(value)
        return value


class DaemonSettings(Section):
    metrics_host: str = "127.0.0.1"  # loopback unless an operator opens it on purpose
    metrics_port: int = Field(9464, ge=0, le=65535)
    # `anchor status` and the live rooms' webhooks (/rooms/<channel>/<room>); loopback unless opened on
    # purpose (a TLS reverse proxy in front for Douyin, which only calls HTTPS).
    http_host: str = "127.0.0.1"
    http_port: int = Field(9465, ge=0, le=65535)
    # SQLAlchemy URL of the as-run log; empty = SQLite under data_dir. A URL with a password belongs in
    # the environment (ANCHOR_DATABASE_URL) or a credentials file, never here.
    database_url: str = ""
    stop_timeout: float = Field(10.0, gt=0, le=120)
    # The institution's clock: times not tied to a channel (approvals, log lines) are shown on it, and a time
    # written without an offset on the command line is read on it (unless --channel names a channel).
    timezone: str = INSTITUTION_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _zone_name(cls, value: str) -> str:
        return zone_name(value)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


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


class Approver(Section):
    """[approvers.NAME]: someone who may approve what airs; NAME is what `anchor approve --by` takes."""

    role: str = Field(min_length=1)  # e.g. "主任医师" or "新闻发言人"
    full_name: str = ""
    # The channel ids whose texts they answer for; None (left out): every channel.
    channels: list[str] | None = Field(None, min_length=1)

    def covers(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels


class AuditSettings(Section):
    evidence_days: int = Field(180, ge=1, le=3650)  # the exact audio that aired is kept this long, by its hash


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
    approvers: dict[str, Approver] = Field(default_factory=dict)
    audit: AuditSettings = AuditSettings()
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
    def calendar_dir(self) -> Path:
        return self.resolve(self.paths.calendar_dir)

    @property
    def lexicon(self) -> Path:
        return self.resolve(self.paths.lexicon)

    @property
    def screening_dir(self) -> Path:
        return self.resolve(self.paths.screening_dir)

    @property
    def cache_dir(self) -> Path:
        return self.resolve(self.paths.cache_dir) if self.paths.cache_dir else self.data_dir / "cache"

    @property
    def database_url(self) -> str:
        """The as-run log's SQLAlchemy URL: $ANCHOR_DATABASE_URL, else [daemon] database_url, else SQLite
        under data_dir. A URL with a password belongs in the environment, never in anchor.toml."""
        return (os.environ.get(DATABASE_URL_ENV) or self.daemon.database_url
                or f"sqlite:///{self.data_dir / 'anchor.db'}")


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
    return settings


def default_settings(base_dir: Path = Path(".")) -> Settings:
    return Settings(base_dir=base_dir.resolve())


def load_settings_leniently(path: Path = DEFAULT_CONFIG) -> tuple[Settings, list[Problem]]:
    """anchor.toml's problems, and settings to check everything else against: its sections without errors as
    written, the others at their defaults (so a typo under [log] does not hide the scripts of paths.scripts_dir)."""
    try:
        return load_settings(path), []
    except InputError as exc:
        problems = list(exc.problems)
    base = path.resolve().parent
    try:
        data = {k: v for k, v in TomlSource(path, read_text(path)).data.items() if k not in ("source", "base_dir")}
    except InputError:  # unreadable, or a TOML syntax error: nothing of it can be used
        return default_settings(base), problems
    while True:
        try:
            return Settings.model_validate({**data, "source": path, "base_dir": base}), problems
        except ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            if not bad & data.keys():
                return default_settings(base), problems
            data = {k: v for k, v in data.items() if k not in bad}
