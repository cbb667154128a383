"""The TrainingJob controller: names, env, builders, exit-code policy, status and the reconciler."""
