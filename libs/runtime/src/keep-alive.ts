/**
 * How long the API and the serve replicas keep an idle keep-alive connection open: longer than the
 * idle timeout of a load balancer in front (60 s for an AWS ALB, the most common), so the balancer
 * always closes first. With Node's default of 5 s the app closes connections the balancer still
 * holds, and a request the balancer sends on one as it closes is answered 502 by the balancer.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;
