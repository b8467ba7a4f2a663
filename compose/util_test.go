package compose

import "strconv"

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }
func strconvI(i int) string     { return strconv.Itoa(i) }
