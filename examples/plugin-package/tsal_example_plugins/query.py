"""A query strategy in modAL's form: ask about the likeliest anomalies."""

from __future__ import annotations

import numpy as np


def most_likely_anomaly(classifier, X_pool, n_instances: int = 1):
    """Pick the `n_instances` pool series with the highest anomaly probability.

    modAL calls a strategy as `strategy(classifier, X_pool, n_instances=n)`
    and expects the chosen indices into `X_pool` and a utility for each.
    """
    # modAL passes its learner; the fitted estimator inside stores the classes.
    estimator = getattr(classifier, "estimator", classifier)
    anomaly_column = list(estimator.classes_).index(1)
    probability = classifier.predict_proba(X_pool)[:, anomaly_column]
    chosen = np.argsort(-probability, kind="stable")[:n_instances]
    return chosen, probability[chosen]
