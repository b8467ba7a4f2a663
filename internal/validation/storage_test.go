package validation

import "testing"

func TestBucketName(t *testing.T) {
	for s, ok := range map[string]bool{
		"my-bucket": true, "a.b.c": true, "ab": false, "../etc": false, "Bucket": false, "a/b/c": false,
		"..%2f..": false, "": false,
	} {
		if got := BucketName("bucket", s) == nil; got != ok {
			t.Errorf("BucketName(%q) accepted %v; want %v", s, got, ok)
		}
	}
}

func TestKeyPrefix(t *testing.T) {
	for s, ok := range map[string]bool{
		"st1/comp2/dest3/composite": true, "st/st-abc/p1/1700000000000": true, "": false, "/abs": false,
		"a/../b": false, "..": false, "a//b": false, "a/./b": false, "a/b/": false, "a\\b": false,
	} {
		if got := KeyPrefix("prefix", s) == nil; got != ok {
			t.Errorf("KeyPrefix(%q) accepted %v; want %v", s, got, ok)
		}
	}
}
