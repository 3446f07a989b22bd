"""Case studies and feedback: themes, consented quotes and a descriptive joint display."""

from spimpact.analyses.qualitative.analysis import FeedbackResult, analyse_feedback
from spimpact.analyses.qualitative.section import qualitative_section

__all__ = ["FeedbackResult", "analyse_feedback", "qualitative_section"]
