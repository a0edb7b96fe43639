<?php
// Chat relay on swoole's Swoole\WebSocket\Server, pushing to every fd in $server->connections
// (the way swoole's docs broadcast). Same semantics as fanout's chat app: a welcome text on
// connect, then every message goes to every *other* client with its opcode kept (text stays
// text, binary stays binary). Only /chat is served; plain HTTP requests get 404.
//
// One process (SWOOLE_BASE, one worker), so `taskset -c 0` gives the per-core figure and the
// pid that bench/compare hands to loadtest is the process holding the connections.
//
// bench/compare runs this only when `php -m` lists swoole; there is no Debian package and PECL
// is out of reach on the benchmark machine, so it is skipped there.
//
// Usage: php server.php [HOST] [PORT]      (default 127.0.0.1 9501)

$host = $argv[1] ?? '127.0.0.1';
$port = (int) ($argv[2] ?? 9501);

$server = new Swoole\WebSocket\Server($host, $port, SWOOLE_BASE);
$server->set([
    'worker_num' => 1,
    'backlog' => 4096,
    'max_connection' => 20000,           // the open-file limit on the benchmark machine
    'package_max_length' => 1 << 20,     // like fanout's default --max-message-size
    'websocket_compression' => false,
    'open_websocket_close_frame' => false, // swoole answers close frames itself
    'log_level' => SWOOLE_LOG_WARNING,
]);

$server->on('open', function (Swoole\WebSocket\Server $server, Swoole\Http\Request $request) {
    $path = parse_url($request->server['request_uri'] ?? '/', PHP_URL_PATH);
    if ($path !== '/chat') {
        $server->disconnect($request->fd, 1008, 'not found');
        return;
    }
    $server->push($request->fd, json_encode(['type' => 'welcome', 'id' => $request->fd]));
});

$server->on('message', function (Swoole\WebSocket\Server $server, Swoole\WebSocket\Frame $frame) {
    foreach ($server->connections as $fd) {
        if ($fd !== $frame->fd && $server->isEstablished($fd)) {
            $server->push($fd, $frame->data, $frame->opcode);
        }
    }
});

$server->on('request', function (Swoole\Http\Request $request, Swoole\Http\Response $response) {
    $response->status(404);
    $response->end("not found\n");
});

echo "swoole " . SWOOLE_VERSION . " listening on ws://$host:$port/chat\n";
$server->start();
