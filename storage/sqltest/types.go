package sqltest

import "github.com/gapsync/gapsync"

// MySQLTypes covers every MySQL/MariaDB type the batch format promises to
// carry byte-exact, at its edges.
var MySQLTypes = TypesTable{
	DDL: []string{
		"SET SESSION sql_mode = ''", // zero dates are allowed in this session's tables
		`CREATE TABLE types_demo (
		id BIGINT UNSIGNED NOT NULL, k VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
		ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
		ii INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
		de DECIMAL(65,30), fl FLOAT, db DOUBLE,
		da DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(6), yr YEAR,
		bt BIT(64), en ENUM('a','b','中'), st SET('x','y','z'),
		ch CHAR(10), vc VARCHAR(300), tx TEXT, lt LONGTEXT,
		bn BINARY(8), vb VARBINARY(300), bl BLOB, mb MEDIUMBLOB,
		js JSON,
		updated_at DATETIME(6) NULL,
		PRIMARY KEY (id, k)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	},
	Insert: []string{
		`INSERT INTO types_demo VALUES (18446744073709551615, 'max',
		127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
		99999999999999999999999999999999999.999999999999999999999999999999, 3.40282e38, 1.7976931348623157e308,
		'9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59.000000', 2155,
		b'1111111111111111111111111111111111111111111111111111111111111111', '中', 'x,y,z',
		'中文字符', '😀 emoji 🎉 and 中文', REPEAT('长', 1000), REPEAT('x', 70000),
		x'0001020304050607', x'00ff00ff', REPEAT(x'00ff', 32768), REPEAT(x'00', 100000),
		'{"k": [1, 2.5, "中", null, {"e": "😀"}]}', '1999-01-01 00:00:00')`,
		`INSERT INTO types_demo VALUES (0, 'min',
		-128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
		-99999999999999999999999999999999999.999999999999999999999999999999, -1.17549e-38, -2.2250738585072014e-308,
		'1000-01-01', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '-838:59:59.000000', 1901,
		b'0', 'a', '',
		'', '', '', '',
		x'', x'', x'', x'',
		'[]', '1999-01-01 00:00:00')`,
		`INSERT INTO types_demo VALUES (1, 'zero',
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0.000000000000000000000000000001, 0.1, 0.1,
		'0000-00-00', '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00.000000', '00:00:00.000001', 0000,
		b'1000000000000000000000000000000000000000000000000000000000000001', 'b', 'y',
		' ', ' trailing ', 'a\0b', 'nul\0inside',
		x'00', x'00', x'00', x'00',
		'{}', '1999-01-02 00:00:00.5')`,
		`INSERT INTO types_demo (id, k) VALUES (2, 'nulls')`,
		// FLOAT and DOUBLE at their extremes: largest, smallest
		// subnormal, smallest normal, negative zero (MariaDB stores +0),
		// and values whose shortest FLOAT text is not their value.
		`INSERT INTO types_demo (id, k, fl, db) VALUES (4, 'fmax', 3.4028234663852886e38, 1.7976931348623157e308),
		(5, 'fsub', 1.401298464324817e-45, 4.9406564584124654e-324), (6, 'fneg', -3.4028234663852886e38, -1.7976931348623157e308),
		(7, 'f01', 0.1, 0.1), (8, 'fnorm', 1.1754943508222875e-38, 2.2250738585072014e-308), (9, 'f-0', -0e0, -0e0),
		(10, 'fodd', 16777215, 9007199254740993), (11, 'fthird', 1/3, 1/3e0)`,
		`INSERT INTO types_demo (id, k, vc, bl, fl, db) VALUES (3, '键 🔑', '''quoted'' "double" ` + "``back``" + ` \\ back\\slash', x'22275c60', 16777217, 0.30000000000000004)`,
	},
	Config: gapsync.Table{Name: "types_demo", Direction: gapsync.Both, Key: []string{"id", "k"}, Cursor: "updated_at", Enabled: true},
}

// SQLiteTypes covers SQLite's storage classes at their edges, with the
// declared types that tempt drivers into converting values (DATETIME).
var SQLiteTypes = TypesTable{
	DDL: []string{`CREATE TABLE types_demo (
		id INTEGER NOT NULL, k TEXT NOT NULL,
		i INTEGER, r REAL, t TEXT, b BLOB, d DATETIME, n NUMERIC, anyv,
		updated_at DATETIME,
		PRIMARY KEY (id, k))`},
	Insert: []string{
		`INSERT INTO types_demo VALUES (1, 'max', 9223372036854775807, 1.7976931348623157e308, '中文 and emoji 😀', x'00ff00ff', '2024-02-29 23:59:59.999', 12345.678, x'01', '1999-01-01 00:00:00')`,
		`INSERT INTO types_demo VALUES (2, 'min', -9223372036854775808, -4.9e-324, '', x'', '0000-00-00 00:00:00', -0.0, 'text', '1999-01-01 00:00:00')`,
		`INSERT INTO types_demo VALUES (3, 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
		`INSERT INTO types_demo VALUES (4, 'nul', 0, 0.1, 'a' || char(0) || 'b', zeroblob(65536), '2024-01-01T10:00:00Z', '1e400', 3.5, '1999-01-02 00:00:00.5')`,
		`INSERT INTO types_demo VALUES (5, '键 🔑', 1, 2.5, '''quoted'' "double" ` + "`back`" + `', randomblob(1000), 'not a date', 7, NULL, '1999-01-03')`,
	},
	Config: gapsync.Table{Name: "types_demo", Direction: gapsync.Both, Key: []string{"id", "k"}, Cursor: "updated_at", Enabled: true},
}

// PostgresTypes covers PostgreSQL's types at their edges: exact numerics,
// floats to the last bit (NaN, infinities, negative zero, subnormals),
// timestamps with and without a zone (infinities too), intervals, bytea
// with NUL bytes, UTF-8 text, json as written and jsonb, uuid and arrays,
// and types an application declares itself: an enum, a domain, inet,
// macaddr, point, xml and a range.
var PostgresTypes = TypesTable{
	DDL: []string{"CREATE TYPE mood AS ENUM ('sad', 'ok', '中文')", "CREATE DOMAIN posint AS integer CHECK (VALUE > 0)", `CREATE TABLE types_demo (
		id BIGINT NOT NULL, k VARCHAR(32) NOT NULL,
		i2 SMALLINT, i4 INTEGER, i8 BIGINT, nu NUMERIC(65,30), nf NUMERIC,
		f4 REAL, f8 DOUBLE PRECISION, bo BOOLEAN,
		da DATE, ts TIMESTAMP(6), tz TIMESTAMPTZ(6), tm TIME(6), tt TIMETZ, iv INTERVAL,
		ba BYTEA, tx TEXT, vc VARCHAR(300), ch CHAR(10),
		js JSON, jb JSONB, uu UUID, ia INTEGER[], ta TEXT[], bits BIT VARYING(64),
		updated_at TIMESTAMP(6) NULL,
		mo mood DEFAULT 'sad', ip INET DEFAULT '2001:db8::1/64', mc MACADDR DEFAULT '08:00:2b:01:02:03',
		pt POINT DEFAULT '(1.5,-2.25)', xm XML DEFAULT '<a b="1">中</a>', dm posint DEFAULT 7,
		tr TSRANGE DEFAULT '[2020-01-01 00:00:00.5,2021-01-01)', ni NUMERIC(10,2) DEFAULT 'NaN',
		PRIMARY KEY (id, k))`},
	Insert: []string{
		`INSERT INTO types_demo VALUES (9223372036854775807, 'max',
		32767, 2147483647, 9223372036854775807, 99999999999999999999999999999999999.999999999999999999999999999999, 123456789012345678901234567890.123456789012345678901234567890,
		3.4028235e38, 1.7976931348623157e308, true,
		'5874897-12-31', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00', '24:00:00', '23:59:59.999999-15:59', '178000000 years',
		'\x000102feff00'::bytea, '中文字符 😀 emoji 🎉', repeat('长', 300), '中文',
		'{"k": [1, 2.5, "中", null, {"e": "😀"}],   "k": 2}', '{"b": 1, "a": [true, null]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
		'{1,2,NULL,-3}', '{"a b","中",NULL,"\""}', B'1111111111111111111111111111111111111111111111111111111111111111',
		'1999-01-01 00:00:00')`,
		`INSERT INTO types_demo VALUES (-9223372036854775808, 'min',
		-32768, -2147483648, -9223372036854775808, -99999999999999999999999999999999999.999999999999999999999999999999, 'NaN',
		1.4e-45, 4.9e-324, false,
		'4713-01-01 BC', '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC', '00:00:00', '00:00:00+15:59', '-178000000 years -1 microsecond',
		''::bytea, '', '', '',
		'[]', '[]', '00000000-0000-0000-0000-000000000000', '{}', '{}', B'0',
		'1999-01-01 00:00:00')`,
		`INSERT INTO types_demo VALUES (0, 'special',
		0, 0, 0, 0.000000000000000000000000000001, '-0.0',
		'NaN', '-Infinity', NULL,
		'infinity', '-infinity', 'infinity', '00:00:00.000001', '12:00:00+00', '1 day -1 second',
		'\x00'::bytea, ' trailing ', 'a''quoted"', ' ',
		'{}', '{}', NULL, '{{1,2},{3,4}}', '{""}', B'',
		'1999-01-02 00:00:00.5')`,
		`INSERT INTO types_demo VALUES (1, 'floats',
		NULL, NULL, NULL, NULL, NULL,
		'-0', '-0', NULL,
		NULL, '2000-02-29 12:34:56.000001', '2000-02-29 12:34:56.000001+08', NULL, NULL, NULL,
		NULL, NULL, NULL, NULL,
		NULL, NULL, NULL, NULL, NULL, NULL,
		'1999-01-02 00:00:00.25')`,
		`INSERT INTO types_demo (id, k, f4, f8, tz) VALUES (2, '键 🔑', 16777217, 0.30000000000000004, '2026-03-29 01:30:00+01')`,
		`INSERT INTO types_demo (id, k) VALUES (3, 'nulls')`,
		`UPDATE types_demo SET mo = '中文', ip = '10.0.0.1', mc = NULL, pt = '(-0,1e-300)', xm = '<x/>', dm = 2147483647, tr = 'empty', ni = 12345678.90 WHERE k = 'max'`,
		`UPDATE types_demo SET mo = NULL, ip = NULL, pt = NULL, xm = NULL, dm = NULL, tr = NULL, ni = NULL WHERE k = 'nulls'`,
	},
	Config: gapsync.Table{Name: "types_demo", Direction: gapsync.Both, Key: []string{"id", "k"}, Cursor: "updated_at", Enabled: true},
}
