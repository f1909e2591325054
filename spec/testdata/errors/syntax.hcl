# A syntax error is reported where the parser stops; the rest of the file is
# still checked as far as it could be read.
environment "ml" {
  platform = "linux-64"
  channels = ["conda-forge"]
  dependencies = ["numpy" "pandas"] # ERROR: Missing item separator
}
