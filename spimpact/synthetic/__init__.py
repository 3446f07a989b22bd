"""Seeded synthetic example schemes with known true effects.

The example data is the default input of every report and the ground truth of the
end-to-end tests. Each scheme folder holds the tables of ``docs/data-contract.md``
and a ``truth.json`` with the effects used to simulate them:

* wellbeing: the expected change of each score from baseline to each follow-up,
  computed by Monte Carlo through the same item-generation and scoring path
  (:mod:`spimpact.synthetic.measures`);
* GP attendance: the true rate ratio after referral and the implied average effect
  on clients, in appointments per person-month (:mod:`spimpact.synthetic.appointments`);
* dropout: follow-ups are missing at random given baseline score, age and IMD.

Referral is timed at an attendance peak (every person, client or comparison, has a
transient pre-index rise; clients' rises are larger on average), so a plain
before/after fall overstates the effect: the regression-to-the-mean trap that the
matched comparison is there to avoid.

The modules follow the data: :mod:`~spimpact.synthetic.schemes` (what makes each
scheme differ), :mod:`~spimpact.synthetic.people` (areas, people, identifiers,
population), :mod:`~spimpact.synthetic.clients` (referral, contacts, support,
feedback), :mod:`~spimpact.synthetic.measures` (questionnaires),
:mod:`~spimpact.synthetic.appointments` (GP attendance) and
:mod:`~spimpact.synthetic.writing` (one scheme's tables, written to its folder).
"""

from spimpact.synthetic.schemes import EXAMPLE_SCHEMES, SchemeSpec
from spimpact.synthetic.writing import simulate_scheme, write_example_data

__all__ = ["EXAMPLE_SCHEMES", "SchemeSpec", "simulate_scheme", "write_example_data"]
