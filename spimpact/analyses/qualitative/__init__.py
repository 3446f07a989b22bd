"""Case studies and feedback, and the scheme's impact on the community."""

from spimpact.analyses.qualitative.analysis import community_section, qualitative_section

__all__ = ["community_section", "qualitative_section"]
