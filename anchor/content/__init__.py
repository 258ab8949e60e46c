"""Scripts: the texts institutions write, read into Script objects."""

from anchor.content.script import Prosody, Script, find_scripts, load_script
from anchor.content.spoken import Paragraph, Pause

__all__ = ["Paragraph", "Pause", "Prosody", "Script", "find_scripts", "load_script"]
