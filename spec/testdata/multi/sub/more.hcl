# A second file in a subdirectory: its relative paths resolve against sub/.
locals {
  greeting = trimspace(file("data/greeting.txt"))
  py_files = fileset("data", "**/*.py")
  all      = fileset(".", "data/{*.md,nested/*}")
  digest   = filesha256("data/greeting.txt")
  data_dir = abspath("data")
  from_root = local.root_text
}

target "pyfiles" "app" {
  environment = environment.ml
  readme      = file("data/notes.md")
  sources     = fileset("data", "**/*.py")
}
