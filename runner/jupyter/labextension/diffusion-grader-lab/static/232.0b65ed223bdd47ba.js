"use strict";(self.rspackChunkdiffusion_grader_lab=self.rspackChunkdiffusion_grader_lab||[]).push([[232],{475(e,t,r){var o=r(601),n=r.n(o),a=r(314),i=(r.n(a))()(n());i.push([e.id,`.dg-panel {
  display: flex;
  flex-direction: column;
  padding: 8px;
  overflow-y: auto;
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
}

.dg-header {
  display: flex;
  align-items: center;
  justify-content: space-between;
}

.dg-heading {
  margin: 4px 0 8px;
  font-size: var(--jp-ui-font-size2);
  font-weight: 600;
  text-transform: uppercase;
  letter-spacing: 0.04em;
}

.dg-refresh {
  font-size: 16px;
}

.dg-problems {
  list-style: none;
  margin: 0;
  padding: 0;
}

.dg-problem {
  padding: 6px 6px 6px 8px;
  margin-bottom: 4px;
  border-left: 3px solid transparent;
  border-radius: 2px;
}

.dg-problem:hover {
  background: var(--jp-layout-color2);
}

.dg-problem.dg-current {
  border-left-color: var(--jp-brand-color1);
  background: var(--jp-layout-color2);
}

.dg-open {
  display: flex;
  gap: 6px;
  width: 100%;
  padding: 0;
  border: 0;
  background: none;
  color: var(--jp-content-link-color);
  font: inherit;
  text-align: left;
  cursor: pointer;
}

.dg-open:hover .dg-title {
  text-decoration: underline;
}

.dg-id {
  font-weight: 600;
  color: var(--jp-ui-font-color2);
}

.dg-meta {
  display: flex;
  justify-content: space-between;
  align-items: center;
  margin-top: 3px;
  padding-left: 2px;
}

.dg-difficulty {
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size0);
}

.dg-badge {
  padding: 1px 7px;
  border-radius: 9px;
  font-size: var(--jp-ui-font-size0);
  white-space: nowrap;
}

.dg-badge-not-started {
  background: var(--jp-layout-color3);
  color: var(--jp-ui-font-color1);
}

.dg-badge-attempted {
  background: #fff1c2;
  color: #7a5200;
}

.dg-badge-solved {
  background: #d3f5dc;
  color: #116329;
}

.dg-current-box {
  display: flex;
  flex-direction: column;
  gap: 4px;
  margin-top: 8px;
  padding-top: 8px;
  border-top: 1px solid var(--jp-border-color2);
}

.dg-current-label {
  overflow: hidden;
  text-overflow: ellipsis;
  white-space: nowrap;
}

.dg-current-caption {
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size0);
  text-transform: uppercase;
  letter-spacing: 0.04em;
}

.dg-submit {
  width: 100%;
  overflow: hidden;
  text-overflow: ellipsis;
  white-space: nowrap;
}

.dg-message {
  margin: 6px 0;
  white-space: pre-wrap;
}

.dg-message-error {
  color: var(--jp-error-color1);
}

.dg-message-busy {
  color: var(--jp-ui-font-color2);
  font-style: italic;
}

.dg-score {
  margin: 6px 0;
  font-weight: 600;
}

.dg-score-full {
  color: #1a7f37;
}

.dg-score-partial {
  color: #cf222e;
}

.dg-verdicts {
  width: 100%;
  font-size: var(--jp-ui-font-size0);
  border-collapse: collapse;
  table-layout: fixed;
}

.dg-verdicts th,
.dg-verdicts td {
  padding: 3px 4px;
  border-bottom: 1px solid var(--jp-border-color2);
  text-align: left;
  vertical-align: top;
  overflow-wrap: break-word;
}

.dg-verdicts th:nth-child(2),
.dg-verdicts td.dg-status {
  width: 50px;
}

.dg-verdicts th:nth-child(3),
.dg-verdicts td.dg-points {
  width: 30px;
  text-align: right;
}

.dg-hidden {
  color: var(--jp-ui-font-color2);
  font-style: italic;
}

.dg-verdict-passed .dg-status {
  color: #1a7f37;
  font-weight: 600;
}

.dg-verdict-failed .dg-status,
.dg-verdict-error .dg-status {
  color: #cf222e;
  font-weight: 600;
}

.dg-verdict-timeout .dg-status,
.dg-verdict-memory .dg-status {
  color: #9a6700;
  font-weight: 600;
}

.dg-verdict-crashed .dg-status,
.dg-verdict-invalid .dg-status {
  color: #8250df;
  font-weight: 600;
}

.dg-verdict-message pre {
  margin: 0;
  white-space: pre-wrap;
  font-family: var(--jp-code-font-family);
  font-size: inherit;
  color: var(--jp-ui-font-color2);
}

.dg-footnote {
  margin-top: 6px;
  color: var(--jp-ui-font-color2);
}

.dg-submit:disabled {
  opacity: 0.5;
  cursor: default;
}
`,""]),r.d(t,{},{A:i})},314(e){e.exports=function(e){var t=[];return t.toString=function(){return this.map(function(t){var r="",o=void 0!==t[5];return t[4]&&(r+="@supports (".concat(t[4],") {")),t[2]&&(r+="@media ".concat(t[2]," {")),o&&(r+="@layer".concat(t[5].length>0?" ".concat(t[5]):""," {")),r+=e(t),o&&(r+="}"),t[2]&&(r+="}"),t[4]&&(r+="}"),r}).join("")},t.i=function(e,r,o,n,a){"string"==typeof e&&(e=[[null,e,void 0]]);var i={};if(o)for(var d=0;d<this.length;d++){var c=this[d][0];null!=c&&(i[c]=!0)}for(var s=0;s<e.length;s++){var l=[].concat(e[s]);o&&i[l[0]]||(void 0!==a&&(void 0===l[5]||(l[1]="@layer".concat(l[5].length>0?" ".concat(l[5]):""," {").concat(l[1],"}")),l[5]=a),r&&(l[2]&&(l[1]="@media ".concat(l[2]," {").concat(l[1],"}")),l[2]=r),n&&(l[4]?(l[1]="@supports (".concat(l[4],") {").concat(l[1],"}"),l[4]=n):l[4]="".concat(n)),t.push(l))}},t}},601(e){e.exports=function(e){return e[1]}},72(e){var t=[];function r(e){for(var r=-1,o=0;o<t.length;o++)if(t[o].identifier===e){r=o;break}return r}function o(e,o){for(var n={},a=[],i=0;i<e.length;i++){var d=e[i],c=o.base?d[0]+o.base:d[0],s=n[c]||0,l="".concat(c," ").concat(s);n[c]=s+1;var p=r(l),u={css:d[1],media:d[2],sourceMap:d[3],supports:d[4],layer:d[5]};if(-1!==p)t[p].references++,t[p].updater(u);else{var f=function(e,t){var r=t.domAPI(t);return r.update(e),function(t){t?(t.css!==e.css||t.media!==e.media||t.sourceMap!==e.sourceMap||t.supports!==e.supports||t.layer!==e.layer)&&r.update(e=t):r.remove()}}(u,o);o.byIndex=i,t.splice(i,0,{identifier:l,updater:f,references:1})}a.push(l)}return a}e.exports=function(e,n){var a=o(e=e||[],n=n||{});return function(e){e=e||[];for(var i=0;i<a.length;i++){var d=r(a[i]);t[d].references--}for(var c=o(e,n),s=0;s<a.length;s++){var l=r(a[s]);0===t[l].references&&(t[l].updater(),t.splice(l,1))}a=c}}},659(e){var t={};e.exports=function(e,r){var o=function(e){if(void 0===t[e]){var r=document.querySelector(e);if(window.HTMLIFrameElement&&r instanceof window.HTMLIFrameElement)try{r=r.contentDocument.head}catch(e){r=null}t[e]=r}return t[e]}(e);if(!o)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");o.appendChild(r)}},540(e){e.exports=function(e){var t=document.createElement("style");return e.setAttributes(t,e.attributes),e.insert(t,e.options),t}},56(e,t,r){e.exports=function(e){var t=r.nc;t&&e.setAttribute("nonce",t)}},825(e){e.exports=function(e){if("u"<typeof document)return{update:function(){},remove:function(){}};var t=e.insertStyleElement(e);return{update:function(r){var o,n,a;o="",r.supports&&(o+="@supports (".concat(r.supports,") {")),r.media&&(o+="@media ".concat(r.media," {")),(n=void 0!==r.layer)&&(o+="@layer".concat(r.layer.length>0?" ".concat(r.layer):""," {")),o+=r.css,n&&(o+="}"),r.media&&(o+="}"),r.supports&&(o+="}"),(a=r.sourceMap)&&"u">typeof btoa&&(o+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(a))))," */")),e.styleTagTransform(o,t,e.options)},remove:function(){var e;null===(e=t).parentNode||e.parentNode.removeChild(e)}}}},113(e){e.exports=function(e,t){if(t.styleSheet)t.styleSheet.cssText=e;else{for(;t.firstChild;)t.removeChild(t.firstChild);t.appendChild(document.createTextNode(e))}}},579(e,t,r){var o=r(72),n=r.n(o),a=r(825),i=r.n(a),d=r(659),c=r.n(d),s=r(56),l=r.n(s),p=r(540),u=r.n(p),f=r(113),g=r.n(f),v=r(475),h={};h.styleTagTransform=g(),h.setAttributes=l(),h.insert=c().bind(null,"head"),h.domAPI=i(),h.insertStyleElement=u(),n()(v.A,h),v.A&&v.A.locals&&v.A.locals}}]);