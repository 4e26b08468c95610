package authz

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestValidUserIsUserPattern: the request check's hand-written loop accepts
// exactly what UserPattern (the rule shared with the proto) accepts, rune by
// rune over all of Unicode, and as a whole string.
func TestValidUserIsUserPattern(t *testing.T) {
	t.Parallel()
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		s := "a" + string(r) + "b"
		if validUser(s) != UserPattern.MatchString(s) {
			t.Fatalf("U+%04X: validUser %v, UserPattern %v", r, validUser(s), UserPattern.MatchString(s))
		}
	}
	if validUser("") || UserPattern.MatchString("") {
		t.Error("the empty user is valid")
	}
}
