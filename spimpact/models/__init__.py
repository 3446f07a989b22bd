"""Generic estimators: any data frame and column names, nothing about schemes.

Every estimator returns a frozen result built on
:class:`~spimpact.models.result.EstimatorResult`: ``tidy(conf_level=None)`` in the
broom layout, ``summary()``, ``plot()`` where a picture helps and ``_repr_html_``.

>>> from spimpact.models import fit_mixed, fit_mmrm, fit_did_2x2, fit_random_effects
"""

from spimpact.models.cell_fits import (
    fit_did_2x2_from_cells,
    fit_event_study_from_cells,
    fit_poisson_from_cells,
    fit_twfe_from_cells,
    sum_panel_cells,
)
from spimpact.models.count import fit_poisson
from spimpact.models.did import fit_did_2x2, fit_event_study, fit_stacked_did, fit_twfe
from spimpact.models.did_honest import honest_did_relative_magnitude, honest_did_smoothness
from spimpact.models.did_staggered import fit_staggered_did
from spimpact.models.imputation import fit_mice, impute_mice, pool_analyses, pool_rubin
from spimpact.models.inequality import fit_sii, rate_ci, wilson_ci
from spimpact.models.ipw import fit_ipw
from spimpact.models.ipw_sequential import fit_sequential_ipw
from spimpact.models.matching import match_nearest
from spimpact.models.meta import fit_random_effects
from spimpact.models.mixed import fit_mixed
from spimpact.models.mmrm import fit_mmrm
from spimpact.models.mmrm_fallback import fit_mmrm_fallback
from spimpact.models.multiplicity import adjust_p_values
from spimpact.models.paired import fit_mean, fit_paired_change, fit_welch, minimum_detectable_change
from spimpact.models.reference_based import draw_imputation_model
from spimpact.models.spc import xmr
from spimpact.models.survival import fit_cox, fit_kaplan_meier, fit_logrank
from spimpact.models.tidy import make_tidy
from spimpact.models.tipping_point import fit_delta_adjusted, fit_tipping_point

__all__ = [
    "adjust_p_values",
    "draw_imputation_model",
    "fit_cox",
    "fit_delta_adjusted",
    "fit_did_2x2",
    "fit_did_2x2_from_cells",
    "fit_event_study",
    "fit_event_study_from_cells",
    "fit_ipw",
    "fit_kaplan_meier",
    "fit_logrank",
    "fit_mean",
    "fit_mice",
    "fit_mixed",
    "fit_mmrm",
    "fit_mmrm_fallback",
    "fit_paired_change",
    "fit_poisson",
    "fit_poisson_from_cells",
    "fit_random_effects",
    "fit_sequential_ipw",
    "fit_sii",
    "fit_stacked_did",
    "fit_staggered_did",
    "fit_tipping_point",
    "fit_twfe",
    "fit_twfe_from_cells",
    "fit_welch",
    "honest_did_relative_magnitude",
    "honest_did_smoothness",
    "impute_mice",
    "make_tidy",
    "match_nearest",
    "minimum_detectable_change",
    "pool_analyses",
    "pool_rubin",
    "rate_ci",
    "sum_panel_cells",
    "wilson_ci",
    "xmr",
]
