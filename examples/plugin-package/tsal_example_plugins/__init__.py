"""Example plugins: a GRU autoencoder, a nearest-centroid classifier and a
query strategy that queries the likeliest anomalies."""
