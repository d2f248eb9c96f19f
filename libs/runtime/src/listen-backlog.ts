/**
 * The listen backlog of the API and the serve replicas: the most the kernel allows (Linux caps it
 * at net.core.somaxconn, 4096 here), not Node's default of 511. test/connections (10,000 clients
 * connecting at once) failed in 2 of 7 clean-clone CI runs with 215 and 357 ECONNRESETs at 511,
 * each time on a slow moment (the file took 110-116 s, 20 s alone). Loaded here by 4 busy loops at
 * nice -10: at 511, 3,954 resets ("Possible SYN flooding ... Sending cookies" in dmesg); at 4096,
 * 1,037 in one run and none in another (4,101 accept-queue overflows, the clients' SYNs retried).
 * Fewer, not none, under that load; the rest likely the kernel's SYN cookies expiring (not shown).
 */
export const LISTEN_BACKLOG = 65_535;
