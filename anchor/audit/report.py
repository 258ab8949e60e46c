"""`anchor audit report`: the monthly broadcast report, per channel, as a PDF an institution files.

For each channel, the month in its own clock: the airings by outcome and the minutes that went out, the
airings that did not air (missed, failed, skipped, interrupted) with their reasons grouped, and audience
totals where the log has them; then the approval actions made that month (who, which script, what).

gather() reads the log into a MonthReport (plain data, tested on its own); write_pdf() lays it out with fpdf2
in a CJK font (WenQuanYi Micro Hei, Debian's fonts-wqy-microhei), labels in Chinese and English.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchor.audit import AuditError
from anchor.clock import shown_time

if TYPE_CHECKING:
    from anchor.store import Approval

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
FONT_FAMILY = "WenQuanYi Micro Hei"
WENT_OUT = ("aired", "late", "interrupted")
NOT_AIRED = ("missed", "failed", "skipped", "interrupted")
OUTCOMES = ("aired", "late", "interrupted", "missed", "failed", "skipped", "on-air")
LABELS = {"aired": "按时播出 aired", "late": "迟播 late", "interrupted": "中断 interrupted", "missed": "漏播 missed",
          "failed": "失败 failed", "skipped": "未播 skipped", "on-air": "播出中 on air"}
ACTIONS = {"approved": "批准 approved", "revoked": "撤销 revoked", "rejected": "驳回 rejected"}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
NO_AUDIENCE = "无观众数据 no audience data: this as-run log keeps no per-airing audience totals"
NO_AUDIENCE_THIS_MONTH = "无观众数据 no audience data: no airing of this month has audience totals"
AUDIENCE_LABELS = {"comments": "评论 comments", "likes": "点赞 likes", "gifts": "礼物 gifts",
                   "gift_cny": "礼物金额 gifts ¥", "superchats": "醒目留言 super chats", "enters": "进场 enters",
                   "follows": "关注 follows"}
VIEWER_COLUMNS = ("viewers_peak", "viewers_mean")


def parse_month(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"--month {text} is not a month: write e.g. 2026-12")
    return int(match.group(1)), int(match.group(2))


def month_bounds(year: int, month: int, zone: tzinfo) -> tuple[datetime, datetime]:
    """The month in `zone`'s clock, as UTC instants [start, end)."""
    after = (year + 1, 1) if month == 12 else (year, month + 1)
    return (datetime(year, month, 1, tzinfo=zone).astimezone(UTC),
            datetime(after[0], after[1], 1, tzinfo=zone).astimezone(UTC))


@dataclass(frozen=True)
class ReasonGroup:
    outcome: str
    count: int
    reason: str  # the first such reason as written; others differ only in their numbers
    varies: bool  # the group's reasons differ in their numbers (seconds late…)
    first: datetime  # the first planned instant of the group (UTC)


@dataclass
class ChannelMonth:
    channel: str
    zone: tzinfo
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)  # on air, by outcome (those that went out)
    reasons: list[ReasonGroup] = field(default_factory=list)
    scripts: set[str] = field(default_factory=set)
    audience: dict[str, float] = field(default_factory=dict)  # summed per-airing totals
    audience_airings: int = 0  # airings with audience totals
    viewers_peak: int | None = None  # the highest peak of any airing
    viewers_means: list[float] = field(default_factory=list)

    @property
    def viewers_mean(self) -> float | None:
        return sum(self.viewers_means) / len(self.viewers_means) if self.viewers_means else None

    @property
    def planned(self) -> int:
        return sum(self.outcomes.values())

    @property
    def went_out(self) -> int:
        return sum(self.outcomes[o] for o in WENT_OUT)

    @property
    def minutes_aired(self) -> float:
        return sum(self.seconds.values()) / 60

    def minutes_aired_of(self, outcome: str) -> float:
        return self.seconds.get(outcome, 0.0) / 60


@dataclass
class MonthReport:
    year: int
    month: int
    zone: tzinfo  # the approvals' clock: the channels' own when they share one, else the institution's
    generated_at: datetime
    channel_filter: str | None
    channels: list[ChannelMonth]
    approvals: list[Approval]
    audience_counts: tuple[str, ...] = ()  # the per-airing audience totals the store keeps (none: no data)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def _reason_key(outcome: str, reason: str) -> tuple[str, str]:
    return outcome, _NUMBER.sub("#", reason)


def gather(url: str, year: int, month: int, zones: Mapping[str, tzinfo], institution: tzinfo,
           channel: str | None = None, now: datetime | None = None) -> MonthReport:
    """The month's figures per channel (each in its own clock; a channel with no channel file, and the approvals
    of channels on different clocks, on the institution's clock)."""
    from anchor import store
    from anchor.audit.verify import reader
    from anchor.store import Airing, Approval, open_engine, table_of

    airing, approval = table_of(Airing), table_of(Approval)
    # Per-airing audience totals, where this store keeps them (columns of the airing row, not sealed).
    counts = tuple(name for name in getattr(store, "AUDIENCE_COUNTS", ()) if name in airing.c)
    viewers = tuple(name for name in VIEWER_COLUMNS if name in airing.c) if counts else ()
    wide_start, wide_end = month_bounds(year, month, UTC)
    wide_start, wide_end = wide_start - timedelta(days=1), wide_end + timedelta(days=1)  # any zone's month
    found: dict[str, ChannelMonth] = {}
    if channel is not None:
        found[channel] = ChannelMonth(channel, zones.get(channel, institution))
    else:
        for name, zone in sorted(zones.items()):
            found[name] = ChannelMonth(name, zone)
    groups: dict[str, dict[tuple[str, str], list[tuple[datetime, str]]]] = {}
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            where = [airing.c.planned_at >= wide_start, airing.c.planned_at < wide_end]
            if channel is not None:
                where.append(airing.c.channel == channel)
            for row in reader("airing", connection.dialect).rows(connection, where):
                assert isinstance(row, Airing)
                book = found.get(row.channel) or found.setdefault(row.channel, ChannelMonth(row.channel, institution))
                start, end = month_bounds(year, month, book.zone)
                if not start <= row.planned_at < end:
                    continue
                outcome = str(row.outcome.value)
                book.outcomes[outcome] += 1
                book.scripts.add(row.script)
                if outcome in WENT_OUT and row.started_at is not None and row.ended_at is not None:
                    book.seconds[outcome] = book.seconds.get(outcome, 0.0) + max(
                        0.0, (row.ended_at - row.started_at).total_seconds())
                if outcome in NOT_AIRED:
                    reason = row.error or "no reason recorded"
                    groups.setdefault(row.channel, {}).setdefault(_reason_key(outcome, reason), []).append(
                        (row.planned_at, reason))
            if counts:
                _add_audience(connection, airing, where, counts, viewers, found, year, month)
            channel_zones = {str(book.zone) for book in found.values()}
            zone = next(iter(found.values())).zone if len(channel_zones) == 1 and found else institution
            start, end = month_bounds(year, month, zone)
            query = [approval.c.at >= start, approval.c.at < end]
            if channel is not None:
                query.append(approval.c.script.in_(sorted(found[channel].scripts)))
            approvals = [row for row in reader("approval", connection.dialect).rows(connection, query)
                         if isinstance(row, Approval)]
    finally:
        engine.dispose()
    order = {outcome: n for n, outcome in enumerate(OUTCOMES)}
    for name, grouped in groups.items():
        found[name].reasons = sorted(
            (ReasonGroup(key[0], len(items), min(items)[1], len({r for _, r in items}) > 1, min(items)[0])
             for key, items in grouped.items()),
            key=lambda g: (order.get(g.outcome, 99), -g.count, g.reason))
    return MonthReport(year, month, zone, now or datetime.now(UTC), channel,
                       sorted(found.values(), key=lambda c: c.channel), approvals, counts)


def _add_audience(connection: Any, airing: Any, where: list[Any], counts: tuple[str, ...], viewers: tuple[str, ...],
                  found: dict[str, ChannelMonth], year: int, month: int) -> None:
    import sqlalchemy as sa

    query = sa.select(airing.c.channel, airing.c.planned_at, *(airing.c[n] for n in (*counts, *viewers))).where(*where)
    for channel, planned, *values in connection.execute(query):
        book = found.get(channel)
        if book is None:
            continue
        start, end = month_bounds(year, month, book.zone)
        if not start <= planned < end or all(v is None for v in values):
            continue
        book.audience_airings += 1
        for name, value in zip((*counts, *viewers), values, strict=True):
            if value is None:
                continue
            if name == "viewers_peak":
                book.viewers_peak = max(book.viewers_peak or 0, int(value))
            elif name == "viewers_mean":
                book.viewers_means.append(float(value))
            else:
                book.audience[name] = book.audience.get(name, 0) + value


# -- the PDF ------------------------------------------------------------------------------------------------


def find_font() -> tuple[Path, int]:
    """WenQuanYi Micro Hei (a .ttc: fpdf2 takes its first face), else what fontconfig says for it."""
    if FONT.is_file():
        return FONT, 0
    if shutil.which("fc-match"):
        result = subprocess.run(["fc-match", "-f", "%{file}\n%{index}", f"{FONT_FAMILY}:lang=zh-cn"],
                                capture_output=True, text=True, timeout=10, check=False)
        lines = result.stdout.splitlines()
        if result.returncode == 0 and lines and Path(lines[0]).suffix.lower() in (".ttf", ".ttc", ".otf"):
            return Path(lines[0]), int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else 0
    raise AuditError(f"no Chinese font for the report: install fonts-wqy-microhei (it puts {FONT} in place)")


def _figure(value: float) -> str:
    return f"{value:.2f}" if value != int(value) else str(int(value))


def _shown(instant: datetime, zone: tzinfo, timespec: str = "minutes") -> str:
    return shown_time(instant, zone, timespec)


def write_pdf(report: MonthReport, out: Path) -> None:
    from fpdf import FPDF
    from fpdf.enums import TextEmphasis, XPos, YPos
    from fpdf.fonts import FontFace

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # it logs every table it subsets at INFO
    font, index = find_font()
    title = f"月度播出报告 Monthly broadcast report {report.label}"

    class Report(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(FONT_FAMILY, size=8)
            self.cell(0, 6, f"{title} · 第 {self.page_no()} 页 page {self.page_no()}/{{nb}}", align="C")

    pdf = Report(format="A4")
    pdf.set_title(title)
    pdf.set_creator("anchor audit report")
    pdf.add_font(FONT_FAMILY, "", str(font), collection_font_number=index)
    pdf.set_auto_page_break(auto=True, margin=16)
    heading = FontFace(emphasis=TextEmphasis.NONE, fill_color=(226, 232, 240))

    def line(text: str, size: float = 10, gap: float = 1.5) -> None:
        pdf.set_font(FONT_FAMILY, size=size)
        pdf.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(gap)

    def table(widths: tuple[int, ...], header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
        pdf.set_font(FONT_FAMILY, size=9)
        with pdf.table(col_widths=widths, headings_style=heading, line_height=5.5) as grid:
            for cells in (header, *rows):
                row = grid.row()
                for cell in cells:
                    row.cell(cell)
        pdf.ln(3)

    pdf.add_page()
    line(title, 16, 2)
    scope = f"频道 channel {report.channel_filter}" if report.channel_filter else "全部频道 all channels"
    line(f"{scope} · 生成于 generated {_shown(report.generated_at, report.zone, 'seconds')} · 各频道按其本地时间计月 "
         "each channel's month in its own clock", 9, 4)

    for book in report.channels:
        start, end = month_bounds(report.year, report.month, book.zone)
        line(f"频道 Channel {book.channel}", 13, 1)
        line(f"{_shown(start, book.zone)} — {_shown(end, book.zone)} ({book.zone})", 9, 2)
        line(f"合计 Total: 计划 {book.planned} planned · 播出 {book.went_out} went out · "
             f"播出时长 {book.minutes_aired:.1f} minutes aired", 10, 2)
        rows = [(LABELS[o], str(book.outcomes[o]), f"{book.minutes_aired_of(o):.1f}" if o in WENT_OUT else "—")
                for o in OUTCOMES if book.outcomes[o] or o in ("aired", "missed", "failed", "skipped")]
        table((60, 30, 40), ("结果 Outcome", "次数 Airings", "分钟 Minutes"), rows)
        if book.reasons:
            line("未正常播出的原因 Why airings did not air (grouped)", 11, 1)
            table((32, 20, 40, 98), ("结果 Outcome", "次数 Count", "首次 First", "原因 Reason"),
                  [(LABELS[g.outcome], str(g.count), _shown(g.first, book.zone),
                    ("例 e.g. " if g.varies else "") + g.reason) for g in book.reasons])
        else:
            line("未正常播出的原因 Why airings did not air: none 无", 10, 3)
        line("观众 Audience", 11, 1)
        if not report.audience_counts:
            line(NO_AUDIENCE, 9, 5)
        elif not book.audience_airings:
            line(NO_AUDIENCE_THIS_MONTH, 9, 5)
        else:
            figures = [(AUDIENCE_LABELS.get(n, n), _figure(book.audience.get(n, 0))) for n in report.audience_counts]
            if book.viewers_peak is not None:
                figures.append(("峰值观众 viewers (highest peak)", str(book.viewers_peak)))
            if book.viewers_mean is not None:
                figures.append(("平均观众 viewers (mean of airings)", f"{book.viewers_mean:.1f}"))
            line(f"{book.audience_airings} 次播出有观众数据 airings with audience totals", 9, 1)
            table((80, 40), ("项目 Count", "合计 Total"), figures)
            pdf.ln(2)

    line(f"本月审核记录 Approvals made this month ({report.zone})", 13, 1)
    if report.approvals:
        table((40, 38, 28, 50, 34),
              ("时间 When", "审核人 Who", "操作 Action", "稿件 Script", "备注 Note"),
              [(_shown(a.at, report.zone), f"{a.by}（{a.role}）", ACTIONS.get(str(a.action.value), str(a.action)),
                a.script, a.note or "") for a in report.approvals])
    else:
        line("本月无审核记录 no approval actions this month", 10)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
