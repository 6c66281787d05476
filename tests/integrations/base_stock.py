"""SciPy's Poisson distribution as an independent check of depot's recommended spares.
Usage: base_stock.py PIPELINE_MEAN FILL_RATE; prints {"quantile", "cdf": [P(X ≤ k) for k ≤ quantile + 1]}."""
import json
import sys

from scipy.stats import poisson

mean, fill = float(sys.argv[1]), float(sys.argv[2])
quantile = int(poisson.ppf(fill, mean))
print(json.dumps({"quantile": quantile, "cdf": [poisson.cdf(k, mean) for k in range(quantile + 2)]}))
