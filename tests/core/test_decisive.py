"""The decisive line of a dead instance's output, per runtime, on realistic log tails."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infraveil.core.diagnosis.decisive import Decisive, LogLine, decisive_line

FIRST = 401  # a tail: the log's earlier lines are gone


def tail(text: str) -> list[LogLine]:
    body = textwrap.dedent(text).strip("\n")
    return [LogLine(FIRST + i, line) for i, line in enumerate(body.split("\n"))]


@dataclass(frozen=True)
class Case:
    name: str
    log: str
    text: str  # the decisive line, verbatim
    runtime: str
    detail: tuple[str, ...] = ()


CASES = [
    # --- Python ---------------------------------------------------------------------------
    Case(
        "python-keyerror",
        """
        [2024-05-02 09:14:01 +0000] [1] [INFO] Starting gunicorn 21.2.0
        [2024-05-02 09:14:01 +0000] [1] [INFO] Listening at: http://0.0.0.0:8000 (1)
        [2024-05-02 09:14:01 +0000] [7] [INFO] Booting worker with pid: 7
        Traceback (most recent call last):
          File "/app/worker.py", line 41, in <module>
            main()
          File "/app/worker.py", line 12, in main
            queue = os.environ["QUEUE_URL"]
                    ~~~~~~~~~~^^^^^^^^^^^^^
          File "<frozen os>", line 679, in __getitem__
        KeyError: 'QUEUE_URL'
        """,
        "KeyError: 'QUEUE_URL'",
        "python",
    ),
    Case(
        "python-chained",
        """
        INFO:     Started server process [1]
        INFO:     Waiting for application startup.
        Traceback (most recent call last):
          File "/app/settings.py", line 8, in load
            return tomllib.loads(path.read_text())
                                 ^^^^^^^^^^^^^^^^
        FileNotFoundError: [Errno 2] No such file or directory: '/etc/app/config.toml'

        The above exception was the direct cause of the following exception:

        Traceback (most recent call last):
          File "/app/main.py", line 5, in <module>
            settings = load(CONFIG)
          File "/app/settings.py", line 10, in load
            raise ConfigError(f"cannot read {path}") from exc
        settings.ConfigError: cannot read /etc/app/config.toml
        """,
        "settings.ConfigError: cannot read /etc/app/config.toml",
        "python",
    ),
    Case(
        "python-during-handling",
        """
        2024-05-02 09:14:01,002 INFO connecting to postgres
        Traceback (most recent call last):
          File "/app/db.py", line 20, in connect
            conn = psycopg2.connect(dsn)
        psycopg2.OperationalError: connection to server at "db" (172.18.0.2), port 5432 failed: Connection refused

        During handling of the above exception, another exception occurred:

        Traceback (most recent call last):
          File "/app/main.py", line 3, in <module>
            from app import create_app
          File "/app/app.py", line 2, in <module>
            import flask
        ModuleNotFoundError: No module named 'flask'
        """,  # noqa: E501
        "ModuleNotFoundError: No module named 'flask'",
        "python",
    ),
    Case(
        "python-syntax-error",
        """
        + exec python /app/main.py
        Traceback (most recent call last):
          File "/app/main.py", line 3, in <module>
            import settings
          File "/app/settings.py", line 12
            DEBUG = os.environ.get("DEBUG"
                                  ^
        SyntaxError: '(' was never closed
        """,
        "SyntaxError: '(' was never closed",
        "python",
        ('  File "/app/settings.py", line 12', '    DEBUG = os.environ.get("DEBUG"'),
    ),
    Case(
        "python-multi-line-message",
        """
        2024-05-02T09:14:01Z starting api
        Traceback (most recent call last):
          File "/app/main.py", line 9, in <module>
            settings = Settings()
          File "/usr/local/lib/python3.12/site-packages/pydantic_settings/main.py", line 84, in __init__
            super().__init__(
        pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings
        database_url
          Field required [type=missing, input_value={}, input_type=dict]
        """,  # noqa: E501
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings",
        "python",
        ("database_url", "  Field required [type=missing, input_value={}, input_type=dict]"),
    ),
    Case(
        "python-cannot-open-file",
        """
        Collecting requirements... done
        python3: can't open file '/app/manage.py': [Errno 2] No such file or directory
        """,
        "python3: can't open file '/app/manage.py': [Errno 2] No such file or directory",
        "python",
    ),
    # --- Java / JVM -----------------------------------------------------------------------
    Case(
        "java-innermost-caused-by",
        """
        10:00:01.120 [main] INFO  com.example.Main - starting order-service 2.4.1
        10:00:01.544 [main] INFO  com.zaxxer.hikari.HikariDataSource - HikariPool-1 - Starting...
        Exception in thread "main" java.lang.IllegalStateException: cannot start order-service
        \tat com.example.Main.start(Main.java:42)
        \tat com.example.Main.main(Main.java:17)
        Caused by: com.zaxxer.hikari.pool.HikariPool$PoolInitializationException: Failed to initialize pool
        \tat com.zaxxer.hikari.pool.HikariPool.throwPoolInitializationException(HikariPool.java:596)
        \t... 2 more
        Caused by: java.net.ConnectException: Connection refused
        \tat java.base/sun.nio.ch.Net.pollConnect(Native Method)
        \tat java.base/sun.nio.ch.NioSocketImpl.connect(NioSocketImpl.java:592)
        \t... 9 more
        """,  # noqa: E501
        "Caused by: java.net.ConnectException: Connection refused",
        "java",
        ('Exception in thread "main" java.lang.IllegalStateException: cannot start order-service',),
    ),
    Case(
        "java-heap-oom-wins-over-later-exceptions",
        """
        2024-05-02 10:00:07.001  INFO 1 --- [main] c.e.Importer : importing batch 17
        Exception in thread "worker-3" java.lang.OutOfMemoryError: Java heap space
        \tat java.base/java.util.Arrays.copyOf(Arrays.java:3537)
        \tat com.example.Importer.read(Importer.java:88)
        Exception in thread "main" java.lang.IllegalStateException: worker died
        \tat com.example.Importer.run(Importer.java:40)
        """,
        'Exception in thread "worker-3" java.lang.OutOfMemoryError: Java heap space',
        "java",
    ),
    Case(
        "java-spring-boot-failure-analyzer",
        """
        2024-05-02T10:00:03.456Z  INFO 1 --- [           main] o.s.b.w.embedded.tomcat.TomcatWebServer  : Tomcat initialized with port 8080 (http)
        2024-05-02T10:00:04.012Z ERROR 1 --- [           main] o.s.b.d.LoggingFailureAnalysisReporter   :

        ***************************
        APPLICATION FAILED TO START
        ***************************

        Description:

        Web server failed to start. Port 8080 was already in use.

        Action:

        Identify and stop the process that's listening on port 8080 or configure this application to listen on another port.
        """,  # noqa: E501
        "Web server failed to start. Port 8080 was already in use.",
        "java",
        (
            "Identify and stop the process that's listening on port 8080 or configure this "
            "application to listen on another port.",
        ),
    ),
    Case(
        "java-launcher-missing-main-class",
        """
        + exec java -cp /app/app.jar com.example.Main
        Error: Could not find or load main class com.example.Main
        Caused by: java.lang.ClassNotFoundException: com.example.Main
        """,
        "Caused by: java.lang.ClassNotFoundException: com.example.Main",
        "java",
        ("Error: Could not find or load main class com.example.Main",),
    ),
    Case(
        "java-logged-exception-without-cause",
        """
        2024-05-02 10:00:01.002 ERROR 1 --- [main] o.s.boot.SpringApplication : Application run failed

        java.lang.IllegalArgumentException: Could not resolve placeholder 'JWT_SECRET' in value "${JWT_SECRET}"
        \tat org.springframework.util.PropertyPlaceholderHelper.parseStringValue(PropertyPlaceholderHelper.java:180) ~[spring-core-6.1.4.jar:6.1.4]
        \tat org.springframework.util.PropertyPlaceholderHelper.replacePlaceholders(PropertyPlaceholderHelper.java:126) ~[spring-core-6.1.4.jar:6.1.4]
        """,  # noqa: E501
        "java.lang.IllegalArgumentException: Could not resolve placeholder 'JWT_SECRET' in value "
        '"${JWT_SECRET}"',
        "java",
    ),
    # --- Go -------------------------------------------------------------------------------
    Case(
        "go-nil-pointer",
        """
        2024/05/02 10:00:01 loading config from /etc/gateway.yaml
        2024/05/02 10:00:01 listening on :8080
        panic: runtime error: invalid memory address or nil pointer dereference
        [signal SIGSEGV: segmentation violation code=0x1 addr=0x30 pc=0x751ba4]

        goroutine 1 [running]:
        github.com/acme/gateway/internal/config.(*Config).Upstream(0x0)
        \t/src/internal/config/config.go:108 +0x144
        main.main()
        \t/src/cmd/gateway/main.go:31 +0x1d
        exit status 2
        """,
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "go",
        (
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x30 pc=0x751ba4]",
            "github.com/acme/gateway/internal/config.(*Config).Upstream(0x0)",
            "\t/src/internal/config/config.go:108 +0x144",
        ),
    ),
    Case(
        "go-explicit-panic-skips-stdlib-frames",
        """
        {"level":"info","msg":"starting worker","version":"1.8.0"}
        panic: missing REDIS_ADDR

        goroutine 1 [running]:
        panic({0x4a8e20?, 0x53b0e0?})
        \t/usr/local/go/src/runtime/panic.go:770 +0x132
        os.Getenv(...)
        \t/usr/local/go/src/os/env.go:101
        main.mustEnv({0x4c1d2b, 0xa})
        \t/src/main.go:22 +0x7c
        main.main()
        \t/src/main.go:30 +0x25
        """,
        "panic: missing REDIS_ADDR",
        "go",
        ("main.mustEnv({0x4c1d2b, 0xa})", "\t/src/main.go:22 +0x7c"),
    ),
    Case(
        "go-fatal-error",
        """
        time=2024-05-02T10:00:01Z level=info msg="cache warmed" entries=10432
        fatal error: concurrent map writes

        goroutine 18 [running]:
        github.com/acme/cache.(*Store).Put(...)
        \t/src/store.go:54 +0x65
        created by github.com/acme/cache.New in goroutine 1
        \t/src/store.go:20 +0x9a

        goroutine 1 [chan receive]:
        main.main()
        \t/src/main.go:40 +0x1aa
        """,
        "fatal error: concurrent map writes",
        "go",
        ("github.com/acme/cache.(*Store).Put(...)", "\t/src/store.go:54 +0x65"),
    ),
    # --- Node -----------------------------------------------------------------------------
    Case(
        "node-enoent-with-code",
        """
        > api@1.4.0 start
        > node server.js

        node:fs:573
          return binding.open(
                         ^

        Error: ENOENT: no such file or directory, open '/app/config/production.json'
            at Object.openSync (node:fs:573:18)
            at Object.readFileSync (node:fs:452:35)
            at Object.<anonymous> (/app/server.js:4:25)
            at node:internal/main/run_main_module:28:49 {
          errno: -2,
          code: 'ENOENT',
          syscall: 'open',
          path: '/app/config/production.json'
        }

        Node.js v20.11.1
        """,
        "Error: ENOENT: no such file or directory, open '/app/config/production.json'",
        "node",
        ("  code: 'ENOENT',", "  syscall: 'open',", "  path: '/app/config/production.json'"),
    ),
    Case(
        "node-cannot-find-module",
        """
        node:internal/modules/cjs/loader:1080
          throw err;
          ^

        Error: Cannot find module 'express'
        Require stack:
        - /app/server.js
            at Module._resolveFilename (node:internal/modules/cjs/loader:1077:15)
            at Module._load (node:internal/modules/cjs/loader:922:27)
            at Object.<anonymous> (/app/server.js:1:17) {
          code: 'MODULE_NOT_FOUND',
          requireStack: [ '/app/server.js' ]
        }

        Node.js v18.19.0
        """,
        "Error: Cannot find module 'express'",
        "node",
        ("  code: 'MODULE_NOT_FOUND',",),
    ),
    Case(
        "node-eaddrinuse-emitted-error",
        """
        [nodemon] starting `node index.js`
        node:events:497
              throw er; // Unhandled 'error' event
              ^

        Error: listen EADDRINUSE: address already in use :::3000
            at Server.setupListenHandle [as _listen2] (node:net:1872:16)
            at listenInCluster (node:net:1920:12)
        Emitted 'error' event on Server instance at:
            at emitErrorNT (node:net:1899:8)
            at process.processTicksAndRejections (node:internal/process/task_queues:82:21) {
          code: 'EADDRINUSE',
          errno: -98,
          syscall: 'listen',
          address: '::',
          port: 3000
        }

        Node.js v22.2.0
        """,
        "Error: listen EADDRINUSE: address already in use :::3000",
        "node",
        ("  code: 'EADDRINUSE',", "  syscall: 'listen',", "  address: '::',", "  port: 3000"),
    ),
    Case(
        "node-heap-out-of-memory-beats-the-abort",
        """
        <--- Last few GCs --->

        [1:0x5f1c2b0]    80111 ms: Mark-Compact 2045.1 (2082.9) -> 2044.3 (2083.1) MB

        <--- JS stacktrace --->

        FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory
         1: 0xb7b3e0 node::Abort() [node]
         2: 0xa8c8aa  [node]
        Aborted (core dumped)
        """,
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        "node",
    ),
    Case(
        "node-logged-stack-without-caret",
        """
        {"level":30,"msg":"server listening","port":3000}
        TypeError: Cannot read properties of undefined (reading 'split')
            at parseOrigins (/app/src/cors.js:7:31)
            at Object.<anonymous> (/app/src/index.js:12:17)
        """,
        "TypeError: Cannot read properties of undefined (reading 'split')",
        "node",
    ),
    # --- Ruby -----------------------------------------------------------------------------
    Case(
        "ruby-keyerror",
        """
        => Booting Puma
        => Rails 7.1.3 application starting in production
        /app/config/initializers/stripe.rb:1:in `fetch': key not found: "STRIPE_KEY" (KeyError)
        \tfrom /app/config/initializers/stripe.rb:1:in `<main>'
        \tfrom /usr/local/bundle/gems/railties-7.1.3/lib/rails/engine.rb:689:in `load'
        """,
        '/app/config/initializers/stripe.rb:1:in `fetch\': key not found: "STRIPE_KEY" (KeyError)',
        "ruby",
    ),
    Case(
        "ruby-34-quote-style-load-error",
        """
        I, [2024-05-02T10:00:01.000000 #1]  INFO -- : starting worker
        <internal:/usr/local/lib/ruby/3.4.0/rubygems/core_ext/kernel_require.rb>:136:in 'Kernel#require': cannot load such file -- sidekiq (LoadError)
        \tfrom /app/worker.rb:1:in '<main>'
        """,  # noqa: E501
        "<internal:/usr/local/lib/ruby/3.4.0/rubygems/core_ext/kernel_require.rb>:136:in "
        "'Kernel#require': cannot load such file -- sidekiq (LoadError)",
        "ruby",
    ),
    Case(
        "ruby-namespaced-exception",
        """
        Puma starting in single mode...
        /usr/local/bundle/gems/activerecord-7.1.3/lib/active_record/connection_adapters/postgresql_adapter.rb:56:in `rescue in new_client': connection to server at "db" failed: Connection refused (ActiveRecord::ConnectionNotEstablished)
        \tfrom /app/config/puma.rb:4:in `block in _load_from'
        """,  # noqa: E501
        "/usr/local/bundle/gems/activerecord-7.1.3/lib/active_record/connection_adapters/"
        'postgresql_adapter.rb:56:in `rescue in new_client\': connection to server at "db" '
        "failed: Connection refused (ActiveRecord::ConnectionNotEstablished)",
        "ruby",
    ),
    # --- .NET -----------------------------------------------------------------------------
    Case(
        "dotnet-unhandled",
        """
        info: Microsoft.Hosting.Lifetime[0]
              Hosting environment: Production
        Unhandled exception. System.InvalidOperationException: Unable to resolve service for type 'Api.IClock' while attempting to activate 'Api.OrderService'.
           at Microsoft.Extensions.DependencyInjection.ActivatorUtilities.GetService(IServiceProvider sp, Type type)
           at Program.<Main>$(String[] args) in /src/Program.cs:line 21
        """,  # noqa: E501
        "Unhandled exception. System.InvalidOperationException: Unable to resolve service for type "
        "'Api.IClock' while attempting to activate 'Api.OrderService'.",
        "dotnet",
    ),
    Case(
        "dotnet-inner-exception",
        """
        info: Microsoft.Hosting.Lifetime[0]
              Content root path: /app
        Unhandled exception. System.InvalidOperationException: Failed to load configuration.
         ---> System.IO.FileNotFoundException: The configuration file 'appsettings.Production.json' was not found and is not optional. The expected physical path was '/app/appsettings.Production.json'.
           at Microsoft.Extensions.Configuration.FileConfigurationProvider.HandleException(ExceptionDispatchInfo info)
           --- End of inner exception stack trace ---
           at Program.<Main>$(String[] args) in /src/Program.cs:line 9
        """,  # noqa: E501
        " ---> System.IO.FileNotFoundException: The configuration file "
        "'appsettings.Production.json' was not found and is not optional. The expected physical "
        "path was '/app/appsettings.Production.json'.",
        "dotnet",
        ("Unhandled exception. System.InvalidOperationException: Failed to load configuration.",),
    ),
    Case(
        "dotnet-core-2-style-nested",
        """
        Hosting environment: Production
        Unhandled Exception: System.AggregateException: One or more errors occurred. (Connection refused)
         ---> Npgsql.NpgsqlException: Exception while connecting
         ---> System.Net.Sockets.SocketException: Connection refused
           at Npgsql.NpgsqlConnector.Connect(NpgsqlTimeout timeout)
        """,  # noqa: E501
        " ---> System.Net.Sockets.SocketException: Connection refused",
        "dotnet",
        (
            "Unhandled Exception: System.AggregateException: One or more errors occurred. "
            "(Connection refused)",
        ),
    ),
    # --- native ---------------------------------------------------------------------------
    Case(
        "native-segfault-alone",
        """
        imgproc 0.9.2: loading model weights from /models/resnet.bin
        imgproc: warming up 4 threads
        Segmentation fault (core dumped)
        """,
        "Segmentation fault (core dumped)",
        "native",
    ),
    Case(
        "native-stack-smashing-beats-abort",
        """
        parsed 12 headers
        *** stack smashing detected ***: terminated
        Aborted (core dumped)
        """,
        "*** stack smashing detected ***: terminated",
        "native",
    ),
    Case(
        "native-invalid-free",
        """
        server: accepted connection from 10.0.0.7
        free(): invalid pointer
        /entrypoint.sh: line 4:     7 Aborted                 (core dumped) /usr/local/bin/server
        """,
        "free(): invalid pointer",
        "native",
    ),
    Case(
        "native-address-sanitizer",
        """
        test server on :9000
        =================================================================
        ==12==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010 at pc 0x55d5c8 bp 0x7ffd sp 0x7ffd
        READ of size 4 at 0x602000000010 thread T0
            #0 0x55d5c7 in handle_request /src/server.c:88
        SUMMARY: AddressSanitizer: heap-use-after-free /src/server.c:88 in handle_request
        ==12==ABORTING
        """,  # noqa: E501
        "==12==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010 at pc "
        "0x55d5c8 bp 0x7ffd sp 0x7ffd",
        "native",
        ("SUMMARY: AddressSanitizer: heap-use-after-free /src/server.c:88 in handle_request",),
    ),
    Case(
        "native-cxx-terminate",
        """
        [info] reading /etc/engine.conf
        terminate called after throwing an instance of 'std::runtime_error'
          what():  engine.conf: unknown key 'threds' on line 3
        Aborted (core dumped)
        """,
        "  what():  engine.conf: unknown key 'threds' on line 3",
        "native",
        ("terminate called after throwing an instance of 'std::runtime_error'",),
    ),
    # --- shell ----------------------------------------------------------------------------
    Case(
        "shell-dash-not-found",
        """
        + echo 'waiting for db'
        waiting for db
        sh: 1: wait-for-it: not found
        """,
        "sh: 1: wait-for-it: not found",
        "shell",
    ),
    Case(
        "shell-bash-command-not-found",
        """
        Applying migrations...
        /entrypoint.sh: line 3: gunicorn: command not found
        """,
        "/entrypoint.sh: line 3: gunicorn: command not found",
        "shell",
    ),
    Case(
        "shell-container-exec-not-in-path",
        """
        Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "uvicorn": executable file not found in $PATH: unknown
        """,  # noqa: E501
        "Error response from daemon: failed to create task for container: failed to create shim "
        "task: OCI runtime create failed: runc create failed: unable to start container process: "
        'exec: "uvicorn": executable file not found in $PATH: unknown',
        "shell",
    ),
    Case(
        "shell-permission-denied",
        """
        starting with profile=prod
        bash: ./run-server: Permission denied
        """,
        "bash: ./run-server: Permission denied",
        "shell",
    ),
    Case(
        "shell-env-interpreter-missing",
        """
        /usr/bin/env: 'python': No such file or directory
        """,
        "/usr/bin/env: 'python': No such file or directory",
        "shell",
    ),
    # --- choosing between runtimes --------------------------------------------------------
    Case(
        "shell-after-python-traceback-wins",
        """
        Running migrations
        Traceback (most recent call last):
          File "/app/migrate.py", line 1, in <module>
            import alembic
        ModuleNotFoundError: No module named 'alembic'
        /entrypoint.sh: line 7: exec: gunicorn: not found
        """,
        "/entrypoint.sh: line 7: exec: gunicorn: not found",
        "shell",
    ),
    Case(
        "python-after-a-failed-helper-wins",
        """
        sh: 1: curl: not found
        Traceback (most recent call last):
          File "/app/main.py", line 4, in <module>
            port = int(os.environ["PORT"])
        ValueError: invalid literal for int() with base 10: 'eighty'
        """,
        "ValueError: invalid literal for int() with base 10: 'eighty'",
        "python",
    ),
    Case(
        "segfault-echo-defers-to-a-runtime-failure",
        """
        Traceback (most recent call last):
          File "/app/infer.py", line 3, in <module>
            import torch
        ImportError: libcudart.so.12: cannot open shared object file: No such file or directory
        Segmentation fault (core dumped)
        """,
        "ImportError: libcudart.so.12: cannot open shared object file: No such file or directory",
        "python",
    ),
    # --- generic --------------------------------------------------------------------------
    Case(
        "generic-last-error-line",
        """
        2024-05-02 10:00:01 INFO  mailer: starting
        2024-05-02 10:00:02 ERROR mailer: SMTP login failed, retrying
        2024-05-02 10:00:05 INFO  mailer: retry 1/3
        2024-05-02 10:00:09 FATAL mailer: giving up: 535 5.7.8 authentication failed
        2024-05-02 10:00:09 INFO  mailer: shutdown complete
        """,
        "2024-05-02 10:00:09 FATAL mailer: giving up: 535 5.7.8 authentication failed",
        "generic",
    ),
    Case(
        "generic-logfmt",
        """
        time=2024-05-02T10:00:01Z level=info msg="starting exporter" addr=:9100
        time=2024-05-02T10:00:01Z level=error msg="cannot read /proc/pressure/cpu" err="permission denied"
        time=2024-05-02T10:00:01Z level=info msg="exiting"
        """,  # noqa: E501
        'time=2024-05-02T10:00:01Z level=error msg="cannot read /proc/pressure/cpu" '
        'err="permission denied"',
        "generic",
    ),
    Case(
        "generic-json",
        """
        {"level":"info","ts":1714644001.1,"msg":"loading plugins"}
        {"level":"error","ts":1714644001.2,"msg":"plugin s3 failed to load","error":"NoCredentialProviders"}
        {"level":"info","ts":1714644001.3,"msg":"bye"}
        """,  # noqa: E501
        '{"level":"error","ts":1714644001.2,"msg":"plugin s3 failed to load",'
        '"error":"NoCredentialProviders"}',
        "generic",
    ),
    Case(
        "generic-error-colon",
        """
        nginx: [warn] the "user" directive makes sense only if the master process runs with super-user privileges
        Error: database "orders" does not exist
        """,  # noqa: E501
        'Error: database "orders" does not exist',
        "generic",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decisive_line(case: Case) -> None:
    lines = tail(case.log)
    found = decisive_line(lines)
    assert found is not None
    expected = next(line for line in lines if line.text == case.text)
    assert found.line == expected
    assert found.runtime == case.runtime
    assert tuple(line.text for line in found.detail) == case.detail
    assert all(line in lines for line in found.detail)


NOTHING_TO_SAY = [
    pytest.param([], id="empty"),
    pytest.param(
        tail(
            """
            [2024-05-02 09:14:01 +0000] [1] [INFO] Starting gunicorn 21.2.0
            [2024-05-02 09:14:05 +0000] [1] [INFO] Handling signal: term
            [2024-05-02 09:14:05 +0000] [7] [INFO] Worker exiting (pid: 7)
            [2024-05-02 09:14:05 +0000] [1] [INFO] Shutting down: Master
            """
        ),
        id="clean-shutdown",
    ),
    pytest.param(
        tail(
            """
            ready: 0 errors, 2 warnings
            error_count=0 mode=production
            """
        ),
        id="lower-case-words-are-not-levels",
    ),
]


@pytest.mark.parametrize("lines", NOTHING_TO_SAY)
def test_nothing_to_say(lines: list[LogLine]) -> None:
    assert decisive_line(lines) is None


def test_the_line_number_is_the_logs_not_the_position() -> None:
    lines = [LogLine(9000, "booting"), LogLine(9001, "KeyError: 'x'"), LogLine(9002, "FATAL x")]
    assert decisive_line(lines) == Decisive(LogLine(9002, "FATAL x"), "generic")


_texty = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
_fragments = st.sampled_from(
    [
        "Traceback (most recent call last):",
        '  File "/app/x.py", line 3, in <module>',
        '  File "/app/x.py", line 3',
        "    ^^^^",
        "KeyError: 'A'",
        "Caused by: java.lang.RuntimeException: x",
        "\tat com.x.Y.z(Y.java:1)",
        "APPLICATION FAILED TO START",
        "Description:",
        "Action:",
        "panic: boom",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/src/main.go:3 +0x1",
        "node:internal/x:1",
        "  ^",
        "Error: x",
        "    at f (/a.js:1:2) {",
        "  code: 'E',",
        "}",
        "Unhandled exception. System.X: y",
        " ---> System.Y: z",
        "terminate called after throwing an instance of 'int'",
        "==1==ERROR: AddressSanitizer: x",
        "Segmentation fault (core dumped)",
        "sh: 1: x: not found",
        "",
    ]
)


@given(st.lists(st.one_of(_texty, _fragments), max_size=40), st.integers(1, 10_000))
def test_never_raises_and_only_quotes_its_input(texts: list[str], first: int) -> None:
    lines = [LogLine(first + i, text) for i, text in enumerate(texts)]
    found = decisive_line(lines)
    if found is not None:
        assert found.line in lines
        assert all(line in lines for line in found.detail)
