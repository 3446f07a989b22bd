"""The scheme's impact on the community: activities and organisations people were connected to."""

from spimpact.analyses.community.analysis import CommunityResult, analyse_community
from spimpact.analyses.community.section import community_section

__all__ = ["CommunityResult", "analyse_community", "community_section"]
