# VERSION: 0.1.3
sparkenv {
  required_version = ">= 0.2, < 1.0" # ERROR: Unsupported sparkenv version
}

sparkenv {
  required_version = "~> 0.1.0"
}

sparkenv {
  required_version = "about 1" # ERROR: Invalid required_version
}
