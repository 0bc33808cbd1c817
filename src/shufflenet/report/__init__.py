"""``shufflenet report``: the paper's evaluation run on this machine, as one self-contained report.

Sections register in one place (:mod:`shufflenet.report.registry`); each renders other packages' results
(the cost engine's Table 5, the guideline experiments, the Fig. 1 / Table 8 and Appendix Table 1(b)
suites, the Fig. 2 profiles, a training run) and opens with the paper's finding beside this machine's.
"""
