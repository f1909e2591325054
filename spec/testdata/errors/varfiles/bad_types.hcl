workers = "lots" # ERROR: Invalid value for variable
tags    = { team = "ml" }
regon   = "eu-west-1" # ERROR: Value for undeclared variable
ports   = [80, "http"] # ERROR: Invalid value for variable
