"""Scripts: the texts institutions write, read into Script objects."""

from anchor.content.script import Prosody, Script, find_scripts, load_script
from anchor.content.spoken import Paragraph, Pause

__all__ = ["Script", "Prosody", "load_script", "find_scripts", "Paragraph", "Pause"]
