"""The audience stage: live rooms → Interactions, tied to the airing on air at their instant."""
