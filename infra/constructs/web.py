"""The web dashboard: the built single-page app (``web/dist``) in a private S3 bucket behind
CloudFront.

* The bucket is private (block public access, TLS only, encrypted); CloudFront reads it through
  an origin access control (OAC), so the files are reachable only through the distribution.
* Viewers are redirected to HTTPS; a response headers policy adds HSTS, nosniff, frame denial,
  no referrer and a strict content security policy: scripts, styles and images from the site
  itself only, and network calls (``connect-src``) to the REST API's origin only.
* The stack holds no files and runs no function to copy them: the files are the output of
  ``npm ci && npm run build`` in ``web/`` (``make web``), published after the stack deploys by
  ``cst web publish`` (``make deploy`` runs both), which also writes ``config.json`` with the
  API's URL, so one build serves any deployment. The stack outputs name the bucket and the
  distribution for it. (CDK's ``BucketDeployment`` would add a custom-resource Lambda with
  wildcard S3 actions, an unpinned runtime and no alarm, for a deploy-time copy.)
* The distribution logs every request to its own log bucket (CloudFront standard logs need
  ACLs, which the other buckets of this stack disable).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.nag import acknowledge

LOG_DAYS: Final = 365


def content_security_policy(api_origin: str) -> str:
    """Only the site's own files, and network calls to the API's origin."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' {api_origin}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "upgrade-insecure-requests",
        ]
    )


class WebDashboard(Construct):
    """Private site bucket + CloudFront (OAC, HTTPS, security headers); ``cst web publish``
    fills the bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api_origin: str,
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="web/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-builds",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=RemovalPolicy.DESTROY,  # rebuilt from the repository on every deploy
        )
        self.logs = s3.Bucket(
            self,
            "CdnLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # CloudFront standard logging writes with an ACL: the bucket must accept them
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-cdn-logs",
                    expiration=Duration.days(LOG_DAYS),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="CryptoSmartTrader dashboard: strict CSP (API origin only), HSTS, no framing",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(api_origin), override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365),
                    include_subdomains=True,
                    preload=True,
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                xss_protection=cloudfront.ResponseHeadersXSSProtection(
                    protection=True, mode_block=True, override=True
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="CryptoSmartTrader web dashboard",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
        )
        self._acknowledge()

    @property
    def origin(self) -> str:
        """The dashboard's origin (``https://<id>.cloudfront.net``): the API's CORS origin."""
        return f"https://{self.distribution.distribution_domain_name}"

    def _acknowledge(self) -> None:
        acknowledge(
            self.logs,
            "AwsSolutions-S1",
            "This bucket receives the CloudFront access logs itself; logging its own requests "
            "to another bucket would only log the log delivery.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "No geo restriction: the dashboard is for the operators of this deployment wherever "
            "they are; every data call needs the API key of a throttled usage plan.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "No WAF web ACL: the distribution serves static files only (no origin logic, "
            "GET/HEAD only, cached); the API behind the data has its own key and throttling. "
            "Attach a web ACL per deployment where the dashboard is exposed wider.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The default *.cloudfront.net certificate accepts older TLS versions for viewers and "
            "a minimum version can only be set with a deployment's own domain and ACM "
            "certificate (then use TLSv1.2_2021). Viewers are always redirected to HTTPS.",
        )
