package localui

import "time"

// cheapArgon keeps the many logins of the tests fast; TestSetLocalAdminDefaults covers the real parameters.
var cheapArgon = argonParams{Time: 1, Memory: 8 * 1024, Threads: 1, KeyLen: 32, SaltLen: 16}

// SetLocalAdminForTest is SetLocalAdmin with cheap hash parameters.
func SetLocalAdminForTest(dir, user, password string) error {
	return setLocalAdmin(dir, user, password, cheapArgon, time.Now())
}
