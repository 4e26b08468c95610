// A canary for `make vulncheck`: it calls a function of a module version
// with a published vulnerability (GO-2021-0113, golang.org/x/text before
// v0.3.7), so a working vulnerability database must flag it. Never built or
// shipped; it lives under testdata so that no Go pattern (./...) includes it.
module github.com/embedgate/embedgate/tools/testdata/vulncanary

go 1.26.0

require golang.org/x/text v0.3.5
