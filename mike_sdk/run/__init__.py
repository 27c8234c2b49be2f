"""Running BMIKE-53: configuration, planning, the evaluator, run folders and their files."""
