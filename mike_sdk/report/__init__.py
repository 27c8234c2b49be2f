"""Reports over run folders: the summary table, tables with bootstrap intervals, figures."""
