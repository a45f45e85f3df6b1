"""Duplicates: candidate pairs, keypoint verification, grouping into tiers, the copy to keep."""
