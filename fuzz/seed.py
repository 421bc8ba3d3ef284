#!/usr/bin/env python3
"""Writes the seed corpus fuzz/corpus/<target>/seed-*: inputs taken from the crates' tests
(hook-config's files/env_overrides/env_d tests and dotenv unit tests, hook-http's query, gourl
and retry tests). Run from anywhere; files the fuzzer added are left alone."""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

config_file = [
    open(os.path.join(HERE, "..", "examples", "hooks", "sftpgo.json")).read(),
    '{"command": {"timeout": 8}}',
    '{"sftpd": {"bindings": [{"port": 2022}]}, "made_up_section": {"anything": [1, {"x": null}]},'
    ' "common": {"idle_timeout": "not an int", "post_disconnect_hook": "/bin/true"},'
    ' "http": {"future_key": {"a": 1}}, "command": {"other": true, "timeout": 5}}',
    '{"hooks": {"queue_capacty": 5}}',
    '{"COMMAND": {"Timeout": 9, "COMMANDS": [{"Path": "/x", "HOOK": "startup"}]},'
    ' "Http": {"Headers": [{"KEY": "X-A", "Value": "1"}]}}',
    '{"command": {"timeout": 9, "TIMEOUT": 10}}',
    '{"common": {"post_disconnect_hook": "/bin/hook"},'
    ' "http": {"timeout": "2.5", "retry_wait_min": "0x3", "retry_wait_max": 12.9,'
    ' "retry_max": true, "skip_tls_verify": "1", "ca_certificates": "/a.pem, /b.pem,,",'
    ' "certificates": {"cert": "/c.pem", "key": "/k.pem"}},'
    ' "command": {"timeout": "30", "env": "A=1, B=2,",'
    ' "commands": [{"path": "/x", "timeout": "", "args": [1, 2.5, true]}]},'
    ' "hooks": {"queue_capacity": "010", "delivery_deadline": 3, "kill_grace": "0"}}',
    '{"command": {"timeout": null}, "http": null}',
    '{"http": {"headers": [{"key": "A"}, 3]}}',
    '{"command": {"env": {"A": "1"}}}',
    '{"hooks": {"output_cap": -1}}',
    '{"common": {"post_disconnect_hook": "https://u:s3cret@hooks.example.com/disc?token=t#f"},'
    ' "http": {"ca_certificates": ["ca.pem", "../shared/ca.pem", "/abs/ca.pem", "./x/../y.pem"]}}',
    # YAML, as in the lib.rs example and files.rs
    "sftpd:\n  bindings: [{port: 2022}]\ncommon:\n  post_disconnect_hook: /usr/local/bin/on-disconnect\n"
    "command:\n  timeout: \"10\"\n  commands:\n    - path: /usr/local/bin/on-disconnect\n",
    "common:\n  post_disconnect_hook: http://127.0.0.1:8080/h?x=1\nhttp:\n  timeout: 2.5\n"
    "  headers:\n    - key: X-Api-Key\n      value: change-me\n      url: http://127.0.0.1:8080/\n"
    "hooks:\n  protocols: [SFTP, FTP]\n  retry_after_max: ~\n  max_in_flight: 0x10\n",
    "base: &b {key: A, value: B}\nhttp:\n  headers: [*b, *b]\n",
    # TOML
    "[common]\npost_disconnect_hook = \"/bin/true\"\n[http]\ntimeout = 20.0\nretry_max = 3\n"
    "headers = [{ key = \"A\", value = \"s3cret\" }]\n[[command.commands]]\npath = \"/x\"\n"
    "timeout = 5\nargs = [\"--a\"]\nhook = \"post_disconnect\"\n[hooks]\nkill_grace = 2\n",
    "[http]\nheaders = [{ key = \"A\", value = \"s3cret",
]

sftpgo_env = [
    "SFTPGO_COMMON__POST_DISCONNECT_HOOK=https://hooks.example.com/x\nSFTPGO_HTTP__TIMEOUT=2.5\n"
    "SFTPGO_HTTP__RETRY_WAIT_MIN=1\nSFTPGO_HTTP__RETRY_WAIT_MAX=0x10\nSFTPGO_HTTP__RETRY_MAX=9\n"
    "SFTPGO_HTTP__SKIP_TLS_VERIFY=false\nSFTPGO_COMMAND__TIMEOUT=60\nSFTPGO_HOOKS__QUEUE_CAPACITY=77\n"
    "SFTPGO_HOOKS__MAX_IN_FLIGHT=3\nSFTPGO_HOOKS__DELIVERY_DEADLINE=9.5\nSFTPGO_HOOKS__RETRY_AFTER_MAX=15\n"
    "SFTPGO_HOOKS__KILL_GRACE=0.25\nSFTPGO_HOOKS__OUTPUT_CAP=1024\nSFTPGO_HOOKS__SHUTDOWN_DEADLINE=4",
    "SFTPGO_COMMAND__TIMEOUT= 30",
    "SFTPGO_HOOKS__QUEUE_CAPACITY=-1\nSFTPGO_HOOKS__KILL_GRACE=2s",
    "SFTPGO_COMMAND__ENV=A=1, B=2 ,, C= 3 ,\nSFTPGO_HTTP__CA_CERTIFICATES= /x/ca1.pem ,/x/ca2.pem,\n"
    "SFTPGO_HOOKS__PROTOCOLS=SFTP, FTP",
    "SFTPGO_HTTP__HEADERS__0__KEY=Authorization\nSFTPGO_HTTP__HEADERS__0__VALUE=Bearer t\n"
    "SFTPGO_HTTP__HEADERS__0__URL=https://h/\nSFTPGO_HTTP__HEADERS__12__KEY=X-B\n"
    "SFTPGO_HTTP__HEADERS__12__VALUE=2\nSFTPGO_HTTP__HEADERS__9__KEY=X-Only-Key",
    "SFTPGO_HTTP__CERTIFICATES__0__CERT=/c.pem\nSFTPGO_HTTP__CERTIFICATES__0__KEY=/k.pem\n"
    "SFTPGO_HTTP__CERTIFICATES__3__CERT=/only.pem",
    "SFTPGO_COMMAND__COMMANDS__0__PATH=/bin/h\nSFTPGO_COMMAND__COMMANDS__0__TIMEOUT=7\n"
    "SFTPGO_COMMAND__COMMANDS__0__ENV=E=1,F=2\nSFTPGO_COMMAND__COMMANDS__0__ARGS=--a, --b\n"
    "SFTPGO_COMMAND__COMMANDS__0__HOOK=post_disconnect\nSFTPGO_COMMAND__COMMANDS__12__TIMEOUT=x",
    "SFTPGO_HTTP__HEADERS__01__KEY=A",
    "SFTPGO_COMMAND__COMMANDS__99999999999999999999999__PATH=/x",
    "SFTPGO_HOOKS__QUEUE_CAPACTY=5\nSFTPGO_HTTPD__BINDINGS__0__PORT=8080\nSFTPGO_DATA_PROVIDER__DRIVER=sqlite",
    "SFTPGO_HOOKS__RETRY_AFTER_MAX=\nSFTPGO_HTTP__TIMEOUT=",
]

dotenv = [
    "# comment\n\nA=1\nexport B = two words  # note\nC: 'lit $A # x'\nD=\"l1\\nl2 ${A}$B \\$A\"\n"
    "E=\"multi\nline\"\nF=\nG=$HOME/x\nA=3\n",
    "A=1\nnoequals\n",
    "A='x\n",
    "A=\"x\n",
    "A B=1\n",
    "# hook settings\nSFTPGO_COMMAND__TIMEOUT=12\nexport SFTPGO_HTTP__RETRY_MAX=7\n"
    "SFTPGO_COMMAND__COMMANDS__3__PATH=\"/usr/local/bin/hook\"\n"
    "SFTPGO_COMMAND__COMMANDS__3__ARGS='a, b'\nHOOK_CONFIG_TEST_ONLY_ENV_D_VAR=1\n",
    "SFTPGO_COMMAND__TIMEOUT=99\nSFTPGO_HTTP__RETRY_WAIT_MIN=${BASE}\n",
    "X=\"a\\\"b\\\\\" # c\nY=${X}${X}$X\n",
]

query = [
    "ip=9.9.9.9&flag&x=1;y=2&bad=%zz&sp=a+b&e=%41",
    "a=1&&b&c=%zz&d%4=1&e=1;f=2&=empty-key&g=%41%2b+&h=1=2",
    "k=%FF%fe",
    "token=s3cr3t&b=2&a=1",
    "Z=1&a=2",
    "username=john+doe%2Bx%26y%3Dz&ip=fe80%3A%3A1%25eth0",
    "j\u00fcrgen/\u00fc~._- +",
    "ab%", "ab%4", "%4g00",
]

gourl = [
    "http://h/p", "HTTP://H.example:80", "http://u:p@h/p#frag", "http://h/a b", "http://h/a%2Fb",
    "http://h/a%2Fb c!", "http://h/%41!'()*[]", "http://h/\u00fc", "http://h/../x/./y",
    "http://u%40x:p%21@h/", "http://u:p!@h/", "http://u@h/", "http://h/p#a b", "http://h/p#",
    "http://[::1]:8080/p?x=1", "http://h/p?x=1&y#f", "http://u:s3cret@h/a%zz", "http://u:s3cret%@h/",
    "http://u:s3cret@h/#%zz", "http://user%3A1:p%40ss@h/", "https://u:s3cret@hooks.example.com/disc?token=t",
    "http://127.0.0.1:8080/hooks/disconnect?source=sftpgo",
]

def retry(now, wait_min_ms, wait_max_ms, cap_ms, value):
    return struct.pack("<IIII", now, wait_min_ms, wait_max_ms, cap_ms) + value.encode()

retry_after = [
    retry(784111777, 2000, 30000, 60000, "120"),
    retry(784111777, 2000, 30000, 60000, "Sun, 06 Nov 1994 08:50:07 GMT"),
    retry(784111777, 2000, 30000, 60000, "Sun, 06 Nov 1994 08:00:00 GMT"),
    retry(784111777, 1000, 1000, 5000, "-5"),
    retry(784111777, 0, 0, 0, "soon"),
    retry(1700000000, 2000, 30000, 60000, "+7"),
    retry(1700000000, 2000, 30000, 60000, "9223372036854775808"),
    retry(1700000000, 2000, 30000, 60000, "mon, 29 feb 2024 23:59:59 UTC"),
    retry(1700000000, 2000, 30000, 60000, "Tue, 31 Apr 2024 1:02:03 CEST"),
]

def write(target, items):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for i, item in enumerate(items):
        data = item if isinstance(item, bytes) else item.encode()
        with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
            f.write(data)

write("config_file", config_file)
write("sftpgo_env", sftpgo_env)
write("dotenv", dotenv)
write("query", query)
write("gourl", gourl)
write("retry_after", retry_after)
