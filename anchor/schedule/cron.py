"""Standard five-field cron (minute hour day-of-month month day-of-week), as institutions know it.

Sunday is 0 or 7, as in every cron; APScheduler's own crontab parser counts 0 as Monday, which is why
we expand cron here. As in standard cron, when both day fields are restricted a day matching either airs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
EXAMPLE = 'cron = "0 9 * * mon-fri" (minute hour day month weekday)'


class CronError(ValueError):
    pass


def _value(token: str, field: str, low: int, high: int, names: list[str] | None) -> int:
    lowered = token.lower()
    if names and lowered in names:
        return names.index(lowered) + (1 if field == "month" else 0)
    if not token.isdigit():
        choices = f" or a name like {names[0]}" if names else ""
        raise CronError(f"cron {field} '{token}' is not a number{choices}")
    number = int(token)
    if not low <= number <= high:
        raise CronError(f"cron {field} {number} is outside {low}–{high}")
    return number


def _field(text: str, field: str, low: int, high: int, names: list[str] | None = None) -> tuple[frozenset[int], bool]:
    """The set of values a field allows, and whether it was '*' (unrestricted)."""
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"cron {field} has an empty list item")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"cron {field} step '/{step_text}' must be a positive number")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _value(a, field, low, high, names), _value(b, field, low, high, names)
            if first > last:
                raise CronError(f"cron {field} range {base} runs backwards")
        else:
            first = _value(base, field, low, high, names)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values), text == "*"


@dataclass(frozen=True)
class CronSpec:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> CronSpec:
        fields = text.split()
        if len(fields) != 5:
            raise CronError(f"cron needs 5 fields, got {len(fields)}: write {EXAMPLE}")
        minutes, _ = _field(fields[0], "minute", 0, 59)
        hours, _ = _field(fields[1], "hour", 0, 23)
        days, any_day = _field(fields[2], "day of month", 1, 31)
        months, _ = _field(fields[3], "month", 1, 12, MONTHS)
        weekdays, any_weekday = _field(fields[4], "day of week", 0, 7, DAYS)
        weekdays = frozenset(d % 7 for d in weekdays)  # 7 is Sunday too
        return cls(minutes, hours, days, months, weekdays, any_day, any_weekday)

    def matches_date(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        weekday = (day.weekday() + 1) % 7  # Python's Monday=0 → cron's Sunday=0
        by_day, by_weekday = day.day in self.days, weekday in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday  # both restricted: standard cron airs on either

    def times(self) -> list[tuple[int, int]]:
        return sorted((h, m) for h in self.hours for m in self.minutes)
