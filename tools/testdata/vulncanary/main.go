// Command vulncanary calls golang.org/x/text/language.Parse at a vulnerable
// version, for `make vulncheck` to prove its offline database works.
package main

import (
	"fmt"

	"golang.org/x/text/language"
)

func main() {
	fmt.Println(language.Parse("en-US"))
}
