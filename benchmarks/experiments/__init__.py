"""Small experiments behind benchmark decisions (run by hand; not part of ``make bench``)."""
