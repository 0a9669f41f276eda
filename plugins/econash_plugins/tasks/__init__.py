"""Task adapters: the offline arith task, GSM8K, GSM-Hard, SVAMP, MATH, StrategyQA and TravelPlanner, with
the shared answer extraction and file-task base."""
