"""What is solved: instances, their files, and the certificates that check a verdict.

Pure numpy and scipy: nothing here imports a solver, so that ``certify`` checks
every solver from outside.
"""
