"""Social-prescribing analyses, one folder per topic.

Each topic's ``analysis`` turns a scheme's data and params into a frozen result
(numbers, no text); its ``section`` turns that result into a publishable
:class:`~spimpact.publish.section.Section`. Analyses build on the generic
estimators in :mod:`spimpact.models` and never import the report that assembles them.
"""
