"""verifact's outer layer: the command line now, the REST service later."""
