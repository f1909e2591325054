targt "pyfiles" "app" { # ERROR: Unsupported block type | Did you mean "target"?
}

enviroment "ml" { # ERROR: Unsupported block type | Did you mean "environment"?
}

name = "top level" # ERROR: Unsupported argument

target "pyfiles" "app" {
  sources = ["src"]
}

locals = { # ERROR: Unsupported argument
  a = 1
}
