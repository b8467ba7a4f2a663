package validation

import (
	"regexp"
	"strings"
)

// BucketPattern is the IVS API's pattern of an S3 bucket name.
var BucketPattern = regexp.MustCompile(`^[a-z0-9-.]+$`)

// keyElement is what IVS puts in a recording prefix: resource ids, session
// ids and a millisecond time.
var keyElement = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// BucketName refuses what CreateStorageConfiguration refuses: fewer than 3
// or more than 63 characters, or characters outside [a-z0-9-.]. The
// worker checks it again on what it reads from the store.
func BucketName(field, s string) *Error {
	if len(s) < 3 || len(s) > 63 {
		return Errorf(field, "Member must have length between 3 and 63")
	}
	if !BucketPattern.MatchString(s) {
		return Errorf(field, "Member must satisfy regular expression pattern: [a-z0-9-.]+")
	}
	return nil
}

// KeyPrefix refuses a recording prefix that is not the slash-separated ids
// IVS makes: empty, absolute, or with an empty, "." or ".." element.
func KeyPrefix(field, s string) *Error {
	if s == "" || len(s) > 1024 {
		return Errorf(field, "prefix must have length between 1 and 1024")
	}
	for _, el := range strings.Split(s, "/") {
		if el == "." || el == ".." || !keyElement.MatchString(el) {
			return Errorf(field, "prefix element %q is not an id", el)
		}
	}
	return nil
}
