"""A Script: Markdown text with TOML front matter, and a hash of everything that shapes its speech."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from anchor.content.spoken import Block, Paragraph, Pause, spoken_blocks
from anchor.problems import InputError, Problem
from anchor.tomlsource import TomlSource, read_text, validation_problems

FENCE = "+++"
# Bounds on one program, so a pasted book cannot exhaust the broadcast PC's memory and disk while rendering.
MAX_SCRIPT_BYTES = 512_000
MAX_SPOKEN_CHARS = 60_000
_RATE = re.compile(r"^[+-]\d{1,3}%$")
_PITCH = re.compile(r"^[+-]\d{1,3}Hz$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9-]*$")
EXAMPLE = '+++\ntitle = "高血压的日常管理"\ncategory = "health"\n+++'


@dataclass(frozen=True)
class Prosody:
    """Speaking style as offsets from the voice's default: percent for rate and volume, Hz for pitch."""

    rate: int = 0
    pitch: int = 0
    volume: int = 0

    @classmethod
    def parse(cls, rate: str | None, pitch: str | None, volume: str | None) -> Prosody:
        return cls(
            rate=int(rate.rstrip("%")) if rate else 0,
            pitch=int(pitch.removesuffix("Hz")) if pitch else 0,
            volume=int(volume.rstrip("%")) if volume else 0,
        )


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1)
    category: str = "notice"
    language: str = "zh-CN"
    summary: str | None = None
    voice: str | None = Field(None, min_length=1)
    rate: str | None = None
    pitch: str | None = None
    volume: str | None = None

    @field_validator("category")
    @classmethod
    def _category(cls, v: str) -> str:
        if not _CATEGORY.match(v):
            raise ValueError('category is a lower-case word such as "health", "policy", "legal" or "notice"')
        return v

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        if not _LANGUAGE.match(v):
            raise ValueError('language is a BCP 47 tag such as "zh-CN" or "en-US"')
        return v

    @field_validator("rate", "volume")
    @classmethod
    def _percent(cls, v: str | None) -> str | None:
        if v is not None and not _RATE.match(v):
            raise ValueError('write a signed percentage such as "+10%" or "-5%"')
        return v

    @field_validator("pitch")
    @classmethod
    def _hertz(cls, v: str | None) -> str | None:
        if v is not None and not _PITCH.match(v):
            raise ValueError('write a signed number of hertz such as "+0Hz" or "-20Hz"')
        return v


@dataclass(frozen=True)
class Script:
    name: str  # path inside scripts_content/, e.g. "health/hypertension.md"
    source: Path
    title: str
    category: str
    language: str
    summary: str | None
    voice: str | None
    prosody: Prosody
    blocks: tuple[Block, ...]
    content_hash: str

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks if isinstance(b, Paragraph))


def _content_hash(front: FrontMatter, blocks: list[Block]) -> str:
    """Hash of the normalized spoken text and speech settings: title or summary edits don't change it."""
    shape = {
        "language": front.language,
        "voice": front.voice,
        "prosody": asdict(Prosody.parse(front.rate, front.pitch, front.volume)),
        "blocks": [["p", b.text] if isinstance(b, Paragraph) else ["pause", b.seconds] for b in blocks],
    }
    return hashlib.sha256(json.dumps(shape, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _split_front_matter(path: Path, text: str) -> tuple[str, int, str, int]:
    """(front matter, its first line, body, body's first line)."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise InputError([Problem(path, 1, "the script is empty", f"start it with front matter:\n{EXAMPLE}")])
    if lines[first].strip() != FENCE:
        raise InputError([Problem(path, first + 1, "the script does not start with front matter",
                                  f"put a +++ line first, the TOML keys, and a closing +++ line:\n{EXAMPLE}")])
    for end in range(first + 1, len(lines)):
        if lines[end].strip() == FENCE:
            return "\n".join(lines[first + 1 : end]), first + 2, "\n".join(lines[end + 1 :]), end + 2
    raise InputError([Problem(path, first + 1, "the front matter opened here is never closed",
                              "add a line with just +++ after the last key")])


def load_script(path: Path, scripts_dir: Path) -> Script:
    """Read one script; raises InputError with every problem found."""
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # read_text says what is wrong with it
    if size > MAX_SCRIPT_BYTES:
        raise InputError([Problem(path, None, f"the script is {size / 1e6:.1f} MB; a script may be at most "
                                  f"{MAX_SCRIPT_BYTES // 1000} KB", "split it into several scripts, each a program of "
                                  "its own")])
    text = read_text(path)
    front_text, front_line, body, body_line = _split_front_matter(path, text)
    problems: list[Problem] = []
    front: FrontMatter | None = None
    try:
        source = TomlSource(path, front_text, first_line=front_line)
        front = FrontMatter.model_validate(source.data)
    except InputError as exc:  # a TOML syntax error: the body is still checked, so all is said at once
        problems.extend(exc.problems)
    except ValidationError as exc:
        problems.extend(
            Problem(p.file, p.line or front_line - 1, p.message, p.hint, p.key)
            for p in validation_problems(source, exc, FrontMatter)
        )
    blocks, body_problems = spoken_blocks(body, body_line, path)
    problems.extend(body_problems)
    spoken = sum(len(b.text) for b in blocks if isinstance(b, Paragraph))
    if spoken > MAX_SPOKEN_CHARS:
        problems.append(Problem(path, body_line, f"the script speaks {spoken:,} characters; a program may speak at "
                                f"most {MAX_SPOKEN_CHARS:,} (about three hours)", "split it into several scripts"))
    if not body_problems and not any(isinstance(b, Paragraph) for b in blocks):
        problems.append(Problem(path, body_line, "the script has nothing to speak",
                                "write at least one paragraph of text after the front matter"))
    if problems or front is None:
        raise InputError(problems)
    try:
        name = path.resolve().relative_to(scripts_dir.resolve()).as_posix()
    except ValueError:
        name = path.name
    return Script(
        name=name,
        source=path,
        title=front.title,
        category=front.category,
        language=front.language,
        summary=front.summary,
        voice=front.voice,
        prosody=Prosody.parse(front.rate, front.pitch, front.volume),
        blocks=tuple(blocks),
        content_hash=_content_hash(front, blocks),
    )


def find_scripts(scripts_dir: Path) -> list[Path]:
    return sorted(p for p in scripts_dir.rglob("*.md") if p.is_file())


__all__ = ["FrontMatter", "Paragraph", "Pause", "Prosody", "Script", "find_scripts", "load_script"]
