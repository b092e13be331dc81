"""Imported last by the live forkserver (``supervisor.preload_modules``): freeze the objects
it has preloaded, so that the processes forked from it share their memory pages for good.

A forked process shares its parent's pages until it writes to one; Python's garbage
collector writes to every object it examines (its ``gc_refs``), so each process's first
full collection used to copy all the preloaded objects into memory of its own.
``gc.freeze()`` moves them out of the collector's sight (the Python documentation's advice
for pre-forking servers); reference counting still writes to the pages of objects a process
uses, so only those are copied.
"""

import gc

gc.freeze()
