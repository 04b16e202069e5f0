"""Reliability workloads any Ommi driver can run: differential testing, faults, concurrency, cancellation, bad input.

* :func:`run_differential`: Hypothesis-generated data and queries on a driver
  and on the reference driver, asserting identical results
  (:mod:`~ommi_testkit.reliability.differential`, with the generators in
  :mod:`~ommi_testkit.reliability.strategies` and the generated domain in
  :mod:`~ommi_testkit.reliability.domain`);
* the workloads of :mod:`~ommi_testkit.reliability.workloads` (acknowledged
  writes and transfers under injected faults, many concurrent tasks, random
  cancellation) and :mod:`~ommi_testkit.reliability.crash` (a process killed
  mid-transaction);
* the bad-input catalogue of :mod:`~ommi_testkit.reliability.bad_input`;
* sizes from :func:`current_profile` (``OMMI_RELIABILITY_PROFILE=quick|stress``)
  and figures for the report (:mod:`~ommi_testkit.reliability.figures`,
  :mod:`~ommi_testkit.reliability.report`).

This package needs Hypothesis (a dependency of ommi-testkit).
"""

from ommi_testkit.reliability.differential import Divergence, UnexpectedError, run_differential
from ommi_testkit.reliability.domain import Domain, Narrowing
from ommi_testkit.reliability.figures import Figures, record
from ommi_testkit.reliability.profile import Profile, current_profile

__all__ = [
    "Divergence",
    "Domain",
    "Figures",
    "Narrowing",
    "Profile",
    "UnexpectedError",
    "current_profile",
    "record",
    "run_differential",
]
