"""Example plugins: a GRU autoencoder, a nearest-centroid classifier and a
query strategy that asks about the likeliest anomalies."""
