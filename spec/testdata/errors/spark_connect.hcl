target "pyfiles" "job" {
  source = "src"
}

spark_connect "notebook" {
  remote  = "sc://spark.example:15002/;user_id=ana"
  bundles = [target.pyfiles.job]
}

spark_connect "bad" {
  remote  = "http://spark.example:15002" # ERROR: Invalid Spark Connect remote
  bundles = [target.pyfiles.jbo] # ERROR: Reference to undeclared target | Did you mean "target.pyfiles.job"?
  alias   = "env/x" # ERROR: Invalid alias
}

spark_connect "notebook" { # ERROR: Duplicate spark_connect
  remote  = "sc://localhost"
  bundles = [target.pyfiles.job]
}

spark_connect "nobundles" { # ERROR: Missing required argument
  remote = "sc://localhost"
}
