"""lifelines' Weibull fit (maximum likelihood with right-censoring) and Kaplan–Meier estimate, as an
independent check of depot's. Reads [{"days", "failed"}] on stdin; prints {"beta", "eta",
"beta_se", "km": [{"days", "at_risk", "survival"}]} for each age at which something failed."""
import json
import sys

from lifelines import KaplanMeierFitter, WeibullFitter

lives = json.load(sys.stdin)
days = [life["days"] for life in lives]
failed = [life["failed"] for life in lives]
weibull = WeibullFitter().fit(days, failed)
km = KaplanMeierFitter().fit(days, failed)
table = km.event_table
steps = [
    {"days": t, "at_risk": int(row["at_risk"]), "survival": float(km.survival_function_.loc[t].iloc[0])}
    for t, row in table.iterrows()
    if row["observed"] > 0
]
print(json.dumps({
    "beta": weibull.rho_,
    "eta": weibull.lambda_,
    "beta_se": float(weibull.summary.loc["rho_", "se(coef)"]),
    "km": steps,
}))
