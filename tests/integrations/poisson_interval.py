"""The exact (Garwood) Poisson 95 % interval by SciPy, as an independent check of depot's.
Usage: poisson_interval.py FAILURES UNIT_YEARS; prints {"afr", "low", "high"} in percent."""
import json
import sys

from scipy.stats import chi2

k, years = int(sys.argv[1]), float(sys.argv[2])
low = 0.0 if k == 0 else chi2.ppf(0.025, 2 * k) / 2
high = chi2.ppf(0.975, 2 * k + 2) / 2
print(json.dumps({"afr": 100 * k / years, "low": 100 * low / years, "high": 100 * high / years}))
