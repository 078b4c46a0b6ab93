import FlashSaleCLI
import FlashSalePostgres
import FlashSaleServer
import Glibc

// flashsale with the HTTP server and the PostgreSQL store linked in: `flashsale` execs this
// for `serve` and for a postgresql:// database.
exit(CLI.main(linked: Linked(serve: Server.run, databaseServer: PostgresLocation.opening,
                             httpExchange: HTTPCrowd.exchange)))
