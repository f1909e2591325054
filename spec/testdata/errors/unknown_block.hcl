targt "pyfiles" "app" { # ERROR: Unsupported block type
}

enviroment "ml" { # ERROR: Unsupported block type
}

name = "top level" # ERROR: Unsupported argument

target "pyfiles" "app" {
  sources = ["src"]
}

locals = { # ERROR: Unsupported argument
  a = 1
}
