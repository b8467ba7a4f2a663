package token

// Peek reads a token's claims without checking its signature, validity or
// expiry. It is for clients, which hold a token only to present it: they
// learn from it where to connect (WhipURL, EventsURL) and who they are.
// Never use it to authorize anything; use Verify.
func Peek(tok string) (Claims, error) {
	seg, err := split(tok)
	if err != nil {
		return Claims{}, err
	}
	return parseClaims(seg.payload)
}
