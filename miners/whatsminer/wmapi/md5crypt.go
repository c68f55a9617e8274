package wmapi

import (
	"crypto/md5"
	"strings"
)

const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// MD5Crypt is the "$1$" crypt(3) of FreeBSD (Poul-Henning Kamp's md5crypt): it returns "$1$salt$hash".
// salt is used up to its first '$' and at most 8 bytes, as crypt(3) does.
func MD5Crypt(password, salt string) string {
	salt = strings.TrimPrefix(salt, "$1$")
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	if len(salt) > 8 {
		salt = salt[:8]
	}
	pw, s := []byte(password), []byte(salt)

	alt := md5.New()
	alt.Write(pw)
	alt.Write(s)
	alt.Write(pw)
	altSum := alt.Sum(nil)

	h := md5.New()
	h.Write(pw)
	h.Write([]byte("$1$"))
	h.Write(s)
	for i := len(pw); i > 0; i -= 16 {
		h.Write(altSum[:min(i, 16)])
	}
	for i := len(pw); i > 0; i >>= 1 {
		if i&1 != 0 {
			h.Write([]byte{0})
		} else {
			h.Write(pw[:1])
		}
	}
	final := h.Sum(nil)

	for i := range 1000 {
		c := md5.New()
		if i&1 != 0 {
			c.Write(pw)
		} else {
			c.Write(final)
		}
		if i%3 != 0 {
			c.Write(s)
		}
		if i%7 != 0 {
			c.Write(pw)
		}
		if i&1 != 0 {
			c.Write(final)
		} else {
			c.Write(pw)
		}
		final = c.Sum(final[:0])
	}

	out := make([]byte, 0, 3+len(s)+1+22)
	out = append(out, "$1$"...)
	out = append(out, s...)
	out = append(out, '$')
	for _, g := range [...][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		v := uint(final[g[0]])<<16 | uint(final[g[1]])<<8 | uint(final[g[2]])
		for range 4 {
			out = append(out, itoa64[v&0x3f])
			v >>= 6
		}
	}
	v := uint(final[11])
	for range 2 {
		out = append(out, itoa64[v&0x3f])
		v >>= 6
	}
	return string(out)
}

// cryptHash returns the hash field of MD5Crypt(password, salt): what follows "$1$salt$".
func cryptHash(password, salt string) string {
	full := MD5Crypt(password, salt)
	return full[strings.LastIndexByte(full, '$')+1:]
}
